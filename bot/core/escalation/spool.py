"""A local, durable spool for escalations the database could not take.

When the store fails the escalation is appended, with fsync, to a JSON Lines
file under ``var/spool/``; the notifier worker replays the spool into the
database as soon as it is back. The patient is never told "staff will contact
you" for a spooled escalation: they are given the clinic's phone number.

No line may be lost while several action-server processes append and the web
app replays, so every change to the spool file happens under an exclusive
``flock`` on ``escalations.lock``:

- a writer locks, appends its line, fsyncs, unlocks;
- replay locks, renames ``escalations.jsonl`` to the batch file
  ``escalations.replaying`` (or appends it to a batch an interrupted replay left),
  unlocks, stores the batch without the lock, then locks again to put the lines
  that still failed back into the spool and remove the batch.

One replay runs at a time across processes (a second lock, ``escalations.replay.lock``,
held for the whole replay; a replay that finds it taken skips its turn).

Lines that cannot be read go to ``escalations.unreadable`` (kept for staff, never
retried). Files are 0600 and the folder 0700: they hold patient data.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Awaitable, Callable, Optional

from bot.core.files import append_lines, count_lines, file_lock
from bot.core.store.models import Priority, Reason, utcnow
from bot.core.store.repository import EscalationInput

logger = logging.getLogger(__name__)

SPOOL_FILE = "escalations.jsonl"
BATCH_FILE = "escalations.replaying"
UNREADABLE_FILE = "escalations.unreadable"
LOCK_FILE = "escalations.lock"
REPLAY_LOCK_FILE = "escalations.replay.lock"


@dataclass(frozen=True)
class SpoolStatus:
    """What the health check reports about the spool (counts and times only)."""

    backlog: int
    unreadable: int
    replay_failures: int
    last_replay_error_at: Optional[datetime]


def encode(data: EscalationInput) -> bytes:
    """One spool line for ``data``."""
    record = asdict(data)
    record["reason"] = data.reason.value
    record["priority"] = data.priority.value
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def decode(line: str) -> EscalationInput:
    """The escalation of one spool line (raises ``ValueError``, ``KeyError`` or ``TypeError``)."""
    raw = json.loads(line)
    raw["reason"] = Reason(raw["reason"])
    raw["priority"] = Priority(raw["priority"])
    return EscalationInput(**raw)


class Spool:
    """Append-only JSON Lines spool with lock-protected, batch-by-rename replay.

    ``replay_failures`` and ``last_replay_error_at`` count this process's replays
    (the web app's notifier is the one that replays).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / SPOOL_FILE
        self.batch_path = directory / BATCH_FILE
        self.unreadable_path = directory / UNREADABLE_FILE
        self.lock_path = directory / LOCK_FILE
        self.replay_lock_path = directory / REPLAY_LOCK_FILE
        self.replay_failures = 0
        self.last_replay_error_at: Optional[datetime] = None

    def _locked(self):
        """Hold the spool file's lock (writers wait for each other and for replay's rename)."""
        return file_lock(self.lock_path)

    def _replaying(self):
        """Hold the replay lock if no other replay does; yields whether it was acquired."""
        return file_lock(self.replay_lock_path, blocking=False)

    def append(self, data: EscalationInput) -> None:
        """Durably append one escalation (raises ``OSError`` if the disk fails too)."""
        line = encode(data)
        with self._locked():
            append_lines(self.path, line)

    def pending(self) -> int:
        """How many escalations wait in the spool (including a batch being replayed)."""
        return count_lines(self.path) + count_lines(self.batch_path)

    def status(self) -> SpoolStatus:
        """Backlog, unreadable lines, and this process's replay failures."""
        return SpoolStatus(
            backlog=self.pending(),
            unreadable=count_lines(self.unreadable_path),
            replay_failures=self.replay_failures,
            last_replay_error_at=self.last_replay_error_at,
        )

    def _take_batch(self) -> bool:
        """Move the spooled lines into the batch file; ``False`` when there is nothing to replay."""
        with self._locked():
            if self.path.exists():
                if self.batch_path.exists():
                    # An earlier replay was interrupted: its batch keeps its lines and gains the new ones.
                    append_lines(self.batch_path, self.path.read_bytes())
                    self.path.unlink()
                else:
                    os.rename(self.path, self.batch_path)
            return self.batch_path.exists()

    def _finish_batch(self, failed: list[bytes]) -> None:
        with self._locked():
            if failed:
                append_lines(self.path, b"".join(failed))
            self.batch_path.unlink()

    def _set_aside(self, line: bytes) -> None:
        append_lines(self.unreadable_path, line.rstrip(b"\n") + b"\n")

    async def replay(self, store: Callable[[EscalationInput], Awaitable[None]]) -> int:
        """Store every spooled escalation; keep the ones that still fail for the next replay.

        Lines that cannot be read (say, a write cut short by a full disk) are moved
        to ``escalations.unreadable`` and logged, so one bad line never blocks the others.

        Returns:
            How many were stored.
        """
        with self._replaying() as mine:
            if not mine or not self._take_batch():
                return 0
            return await self._replay_batch(store)

    async def _replay_batch(self, store: Callable[[EscalationInput], Awaitable[None]]) -> int:
        stored, failed, unreadable = 0, [], 0
        with self.batch_path.open("rb") as batch:
            for line in batch:
                if not line.strip():
                    continue
                try:
                    item = decode(line.decode("utf-8"))
                except (ValueError, KeyError, TypeError):
                    self._set_aside(line)
                    unreadable += 1
                    continue
                try:
                    await store(item)
                    stored += 1
                except Exception as exc:  # noqa: BLE001 - whatever the store raised, the line is kept
                    failed.append(line if line.endswith(b"\n") else line + b"\n")
                    self.replay_failures += 1
                    self.last_replay_error_at = utcnow()
                    logger.warning(
                        "replaying a spooled %s escalation failed (%s); kept for the next replay",
                        item.reason.value, type(exc).__name__,
                    )
        self._finish_batch(failed)
        if unreadable:
            logger.error("%d unreadable line(s) in the escalation spool moved to %s", unreadable, UNREADABLE_FILE)
        if stored:
            logger.info("replayed %d spooled escalation(s) into the store", stored)
        return stored
