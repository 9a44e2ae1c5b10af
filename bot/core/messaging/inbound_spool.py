"""A local, durable spool for patient texts the store could not take in.

Twilio does not retry an incoming text: if the webhook cannot record it, it is lost.
So when the store is down or slow (``SMS_STORE_TIMEOUT_SECONDS``) the channel
appends the text, with fsync, to ``var/spool/sms_inbound.jsonl``, answers the
patient without the store (:mod:`bot.assistant.messaging.degraded`), and the Rasa process
replays the spool into the ordinary path (take in, the assistant, the outbox) as
soon as the store answers again.

Same discipline as the escalation spool (:mod:`bot.core.escalation.spool`): every change
to the spool file happens under an exclusive ``flock`` on ``sms_inbound.lock``; a
replay takes its batch by renaming the file to ``sms_inbound.replaying`` (or
appending to a batch an interrupted replay left), works without the lock, then puts
back what it did not finish. One replay runs at a time across processes (a second
lock held for the whole replay). Texts are replayed in the order they came; the first
that cannot be stored stops the batch, so a conversation's texts never overtake each
other. Unreadable lines go to ``sms_inbound.unreadable``, never retried.

Files are 0600 and the folder 0700: they hold numbers and patient text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Awaitable, Callable, Optional

from bot.core.files import append_lines, count_lines, file_lock

logger = logging.getLogger(__name__)

SPOOL_FILE = "sms_inbound.jsonl"
BATCH_FILE = "sms_inbound.replaying"
UNREADABLE_FILE = "sms_inbound.unreadable"
LOCK_FILE = "sms_inbound.lock"
REPLAY_LOCK_FILE = "sms_inbound.replay.lock"


@dataclass(frozen=True)
class SpooledText:
    """A signed patient text as the webhook received it."""

    address: str
    message_sid: str
    body: str
    media: int
    received_at: str


class InboundSpool:
    """Append-only JSON Lines spool of incoming texts, replayed in order."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / SPOOL_FILE
        self.batch_path = directory / BATCH_FILE
        self.unreadable_path = directory / UNREADABLE_FILE
        self.lock_path = directory / LOCK_FILE
        self.replay_lock_path = directory / REPLAY_LOCK_FILE

    def append(self, text: SpooledText) -> None:
        """Durably append one text (raises ``OSError`` if the disk fails too)."""
        line = (json.dumps(asdict(text), ensure_ascii=False) + "\n").encode("utf-8")
        with file_lock(self.lock_path):
            append_lines(self.path, line)

    def pending(self) -> int:
        """How many texts wait to be replayed (including a batch being replayed)."""
        return count_lines(self.path) + count_lines(self.batch_path)

    def oldest(self) -> Optional[datetime]:
        """When the oldest waiting text came (``None``: nothing waits, or it cannot be read)."""
        for path in (self.batch_path, self.path):
            try:
                with path.open("rb") as handle:
                    for line in handle:
                        if line.strip():
                            try:
                                return datetime.fromisoformat(json.loads(line)["received_at"])
                            except (ValueError, KeyError, TypeError):
                                return None
            except FileNotFoundError:
                continue
        return None

    def _take_batch(self) -> bool:
        with file_lock(self.lock_path):
            if self.path.exists():
                if self.batch_path.exists():
                    append_lines(self.batch_path, self.path.read_bytes())
                    self.path.unlink()
                else:
                    os.rename(self.path, self.batch_path)
            return self.batch_path.exists()

    def _finish_batch(self, left: list[bytes]) -> None:
        """Put the lines not replayed back in front of any written meanwhile, and drop the batch."""
        with file_lock(self.lock_path):
            if left:
                newer = self.path.read_bytes() if self.path.exists() else b""
                tmp = self.directory / (SPOOL_FILE + ".tmp")
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                append_lines(tmp, b"".join(left) + newer)
                os.replace(tmp, self.path)
            self.batch_path.unlink()

    async def replay(self, handle: Callable[[SpooledText], Awaitable[None]]) -> int:
        """Hand every spooled text to ``handle`` in order; stop at the first that raises and keep the rest.

        Returns:
            How many texts were handled.
        """
        with file_lock(self.replay_lock_path, blocking=False) as mine:
            if not mine or not self._take_batch():
                return 0
            lines = [line if line.endswith(b"\n") else line + b"\n"
                     for line in self.batch_path.read_bytes().splitlines(keepends=True) if line.strip()]
            done = 0
            for index, line in enumerate(lines):
                try:
                    item = SpooledText(**json.loads(line.decode("utf-8")))
                except (ValueError, TypeError, UnicodeDecodeError):
                    append_lines(self.unreadable_path, line)
                    logger.error("an unreadable line in the SMS spool was moved to %s", UNREADABLE_FILE)
                    continue
                try:
                    await handle(item)
                except Exception as exc:  # noqa: BLE001 - whatever failed, the text is kept for the next replay
                    logger.warning("replaying a spooled text failed (%s); kept for the next replay", type(exc).__name__)
                    self._finish_batch(lines[index:])
                    return done
                done += 1
            self._finish_batch([])
            if done:
                logger.info("replayed %d spooled text(s)", done)
            return done
