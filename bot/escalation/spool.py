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
from typing import Awaitable, Callable, Iterator

from bot.store.models import Priority, Reason
from bot.store.repository import EscalationInput

logger = logging.getLogger(__name__)

SPOOL_FILE = "escalations.jsonl"


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
    def _read(path: Path) -> Iterator[EscalationInput]:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                raw = json.loads(line)
                raw["reason"] = Reason(raw["reason"])
                raw["priority"] = Priority(raw["priority"])
                yield EscalationInput(**raw)

    async def replay(self, store: Callable[[EscalationInput], Awaitable[None]]) -> int:
        """Store every spooled escalation; keep the ones that still fail.

        Returns:
            How many were stored.
        """
        if not self.path.exists():
            return 0
        processing = self.path.with_suffix(".replaying")
        if not processing.exists():
            os.replace(self.path, processing)
        stored, failed = 0, []
        for item in self._read(processing):
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
