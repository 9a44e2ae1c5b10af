"""What staff write into a conversation, and how a stored line and its holder show in the API.

Shared by every channel: the text rules (control characters out, trimmed, at most
:data:`MAX_MESSAGE_CHARS`), the name the patient sees, and the fields every line has
(each channel adds how the line fared: delivered to the open chat, or queued as texts).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any, Optional, Protocol

from bot.core.store.models import ChatTakeover, StaffChatLine
from bot.dashboard.staff.handoff.errors import EmptyLine, TooLong

MAX_MESSAGE_CHARS = 2000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Staff(Protocol):
    """Who acts (``bot.dashboard.web.auth.StaffIdentity`` fits)."""

    id: int
    username: str
    display_name: str


def clean_message(text: Any) -> str:
    """Staff text made safe to send: control characters removed, trimmed, within the length limit."""
    if not isinstance(text, str):
        raise EmptyLine("Write a message first.")
    text = CONTROL.sub(" ", unicodedata.normalize("NFC", text)).strip()
    if not text:
        raise EmptyLine("Write a message first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise TooLong(f"Messages can be up to {MAX_MESSAGE_CHARS} characters; this one has {len(text)}.")
    return text


def shown_name(staff: Staff) -> str:
    """The name the patient sees."""
    return (staff.display_name or staff.username).strip()[:100]


def iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def line_fields(line: StaffChatLine) -> dict[str, Any]:
    """What every line shows, on every channel."""
    return {
        "id": line.id,
        "kind": getattr(line.kind, "value", line.kind),
        "author": line.author_name,
        "text": line.body,
        "at": iso(line.created_at),
    }


def holder_fields(takeover: ChatTakeover) -> dict[str, Any]:
    """Who holds a conversation, as the API shows it."""
    return {"name": takeover.staff_name, "username": takeover.staff_username, "since": iso(takeover.started_at)}
