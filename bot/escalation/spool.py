"""A local, durable spool for escalations the database could not take.

When the store is unreachable the escalation is appended, with fsync, to a JSON
Lines file under ``var/spool/``; the notifier worker replays the spool into the
database as soon as it is back. The patient is never told "staff will contact
you" for a spooled escalation: they are given the clinic's phone number.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Awaitable, Callable

from bot.store.models import Priority, Reason
from bot.store.repository import EscalationInput

logger = logging.getLogger(__name__)

SPOOL_FILE = "escalations.jsonl"
UNREADABLE_FILE = "escalations.unreadable"


class Spool:
    """Append-only JSON Lines spool with atomic replay."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / SPOOL_FILE

    def append(self, data: EscalationInput) -> None:
        """Durably append one escalation (raises ``OSError`` if the disk fails too)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        record = asdict(data)
        record["reason"] = data.reason.value
        record["priority"] = data.priority.value
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> int:
        """How many escalations wait in the spool."""
        if not self.path.exists():
            return 0
        with self.path.open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())

    @staticmethod
    def _decode(line: str) -> EscalationInput:
        raw = json.loads(line)
        raw["reason"] = Reason(raw["reason"])
        raw["priority"] = Priority(raw["priority"])
        return EscalationInput(**raw)

    async def replay(self, store: Callable[[EscalationInput], Awaitable[None]]) -> int:
        """Store every spooled escalation; keep the ones that still fail.

        Lines that cannot be read (say, a write cut short by a full disk) are
        moved to ``escalations.unreadable`` and logged, so that one bad line
        never blocks the others.

        Returns:
            How many were stored.
        """
        processing = self.path.with_suffix(".replaying")
        if self.path.exists():
            # Append to a batch left over by an interrupted replay, if any.
            with self.path.open(encoding="utf-8") as new, processing.open("a", encoding="utf-8") as batch:
                batch.write(new.read())
            self.path.unlink()
        if not processing.exists():
            return 0
        stored, failed = 0, []
        for line in processing.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                item = self._decode(line)
            except (ValueError, KeyError, TypeError):
                logger.error("unreadable line in the escalation spool; moved to %s", UNREADABLE_FILE)
                with (self.directory / UNREADABLE_FILE).open("a", encoding="utf-8") as bad:
                    bad.write(line + "\n")
                continue
            try:
                await store(item)
                stored += 1
            except Exception:  # noqa: BLE001 - keep the item; the store logged why
                failed.append(item)
        for item in failed:
            self.append(item)
        processing.unlink()
        if stored:
            logger.info("replayed %d spooled escalation(s) into the store", stored)
        return stored
