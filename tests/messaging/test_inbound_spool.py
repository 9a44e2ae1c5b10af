"""The spool of texts the store could not take: durable, replayed in order, nothing dropped on failure."""

from __future__ import annotations

import pytest

from bot.core.messaging.inbound_spool import InboundSpool, SpooledText

AT = "2026-12-07T12:00:00+00:00"


def text(n: int) -> SpooledText:
    return SpooledText("+447700900123", f"SM{n:032x}", f"message {n}", 0, AT)


@pytest.fixture
def spool(tmp_path) -> InboundSpool:
    return InboundSpool(tmp_path / "spool")


async def test_replay_hands_every_text_over_in_the_order_it_came(spool):
    for n in range(3):
        spool.append(text(n))
    seen = []

    async def handle(item):
        seen.append(item.body)

    assert await spool.replay(handle) == 3
    assert seen == ["message 0", "message 1", "message 2"]
    assert spool.pending() == 0


async def test_the_first_failure_stops_the_batch_and_keeps_it_ahead_of_newer_texts(spool):
    for n in range(3):
        spool.append(text(n))
    seen = []

    async def handle(item):
        if item.body == "message 1":
            spool.append(text(9))  # a text that arrives while the replay runs
            raise OSError("store down again")
        seen.append(item.body)

    assert await spool.replay(handle) == 1
    assert spool.pending() == 3

    async def record(item):
        seen.append(item.body)

    assert await spool.replay(record) == 3
    assert seen == ["message 0", "message 1", "message 2", "message 9"]


async def test_an_unreadable_line_is_set_aside_and_the_rest_replayed(spool):
    spool.append(text(0))
    with spool.path.open("ab") as handle:
        handle.write(b"{not json\n")
    spool.append(text(1))
    seen = []

    async def handle(item):
        seen.append(item.body)

    assert await spool.replay(handle) == 2
    assert seen == ["message 0", "message 1"]
    assert spool.unreadable_path.read_bytes() == b"{not json\n"


async def test_a_replay_left_unfinished_is_picked_up_with_newer_texts(spool):
    spool.append(text(0))
    assert spool._take_batch()  # a replay that died after taking its batch
    spool.append(text(1))
    seen = []

    async def handle(item):
        seen.append(item.body)

    assert spool.pending() == 2
    assert await spool.replay(handle) == 2
    assert seen == ["message 0", "message 1"]
