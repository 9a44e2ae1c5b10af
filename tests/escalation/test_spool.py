"""The spool: nothing lost under concurrent writers and repeated replays, private files, counted failures."""

from __future__ import annotations

import asyncio
import fcntl
import multiprocessing
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Awaitable, Callable

from bot.core.escalation.spool import Spool, encode
from bot.core.store.models import Priority, Reason
from bot.core.store.repository import EscalationInput

WRITERS = 4
RECORDS_PER_WRITER = 750


def recording_store() -> tuple[list[str], Callable[[EscalationInput], Awaitable[None]]]:
    """A store that accepts everything and records the sender ids it was given, in order."""
    seen: list[str] = []

    async def store(data: EscalationInput) -> None:
        seen.append(data.sender_id)

    return seen, store


def item(sender_id: str, reason: Reason = Reason.emergency) -> EscalationInput:
    return EscalationInput(
        sender_id=sender_id, channel="socketio", reason=reason, priority=Priority.urgent,
        trigger={"matched_terms": ["chest pain"]}, transcript=[{"from": "patient", "text": "my chest hurts"}],
    )


def write_records(directory: str, writer: int, start: "multiprocessing.synchronize.Event") -> None:
    """One action-server process appending its share of escalations (runs in a child process)."""
    spool = Spool(Path(directory))
    start.wait(30)
    for number in range(RECORDS_PER_WRITER):
        spool.append(item(f"w{writer}-{number}"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_concurrent_writer_processes_during_repeated_replays_lose_nothing(tmp_path):
    spool = Spool(tmp_path / "spool")
    stored: Counter[str] = Counter()
    calls = 0

    async def store(data: EscalationInput) -> None:
        nonlocal calls
        calls += 1
        if calls % 7 == 0:
            raise ConnectionError("the database blinked")  # kept and re-appended by replay
        stored[data.sender_id] += 1

    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [context.Process(target=write_records, args=(str(spool.directory), n, start)) for n in range(WRITERS)]
    for process in writers:
        process.start()
    start.set()
    replays_while_writing = 0
    while any(process.is_alive() for process in writers):
        await spool.replay(store)
        replays_while_writing += 1
        await asyncio.sleep(0.005)
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    for _ in range(50):
        if not spool.pending():
            break
        await spool.replay(store)

    expected = {f"w{w}-{n}" for w in range(WRITERS) for n in range(RECORDS_PER_WRITER)}
    assert set(stored) == expected
    assert set(stored.values()) == {1}
    assert sum(stored.values()) == WRITERS * RECORDS_PER_WRITER
    assert spool.pending() == 0
    assert spool.status().unreadable == 0
    assert replays_while_writing > 1


def test_the_spool_folder_and_files_are_private(tmp_path):
    previous = os.umask(0o022)
    try:
        spool = Spool(tmp_path / "var" / "spool")
        spool.append(item("conv-1"))
        spool.path.write_bytes(spool.path.read_bytes() + b"torn\n")
        asyncio.run(spool.replay(_fail))
    finally:
        os.umask(previous)

    assert mode(spool.directory) == 0o700
    assert mode(spool.directory.parent) == 0o700
    for path in (spool.path, spool.lock_path, spool.replay_lock_path, spool.unreadable_path):
        assert mode(path) == 0o600, path.name


async def _fail(data: EscalationInput) -> None:
    raise ConnectionError("still down")


async def test_a_failed_replay_keeps_the_line_and_is_counted(tmp_path):
    spool = Spool(tmp_path)
    spool.append(item("conv-1"))

    assert await spool.replay(_fail) == 0

    status = spool.status()
    assert status.backlog == 1
    assert status.replay_failures == 1
    assert status.last_replay_error_at is not None
    assert not spool.batch_path.exists()


async def test_unreadable_lines_are_set_aside_and_counted(tmp_path, caplog):
    spool = Spool(tmp_path)
    spool.directory.mkdir(exist_ok=True)
    spool.path.write_bytes(b'{"sender_id": "conv-torn", "reas\nnot json either\n')
    spool.append(item("conv-ok"))
    seen, store = recording_store()

    assert await spool.replay(store) == 1

    assert seen == ["conv-ok"]
    assert spool.status().unreadable == 2
    assert spool.status().backlog == 0
    assert "2 unreadable line(s)" in caplog.text
    assert "conv-torn" not in caplog.text


async def test_a_batch_left_by_an_interrupted_replay_is_merged_with_new_lines(tmp_path):
    spool = Spool(tmp_path)
    spool.directory.mkdir(exist_ok=True)
    spool.batch_path.write_bytes(encode(item("left-over")))
    spool.append(item("new"))
    seen, store = recording_store()

    assert await spool.replay(store) == 2

    assert sorted(seen) == ["left-over", "new"]
    assert spool.pending() == 0
    assert not spool.batch_path.exists()


async def test_a_line_torn_by_a_full_disk_does_not_swallow_the_next_record(tmp_path):
    spool = Spool(tmp_path)
    spool.directory.mkdir(exist_ok=True)
    spool.path.write_bytes(b'{"sender_id": "conv-torn", "rea')
    spool.append(item("conv-next"))
    seen, store = recording_store()

    await spool.replay(store)

    assert seen == ["conv-next"]
    assert spool.status().unreadable == 1


async def test_a_replay_skips_its_turn_while_another_process_replays(tmp_path):
    spool = Spool(tmp_path)
    spool.append(item("conv-1"))
    fd = os.open(spool.replay_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert await spool.replay(_fail) == 0
        assert spool.status().replay_failures == 0
    finally:
        os.close(fd)

    assert spool.pending() == 1
