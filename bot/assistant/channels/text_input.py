"""A patient's message text made safe to process, before Rasa or the safety screen reads it.

Binary and control characters are removed, the length is capped, empty input is recognised,
and ``/intent`` payloads are accepted only from a short allow-list (the payloads our own
buttons send), so a patient cannot force an intent or set a slot by typing one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

ALLOWED_PAYLOADS = re.compile(
    r"^/(greet|affirm|deny|stop|correct_details|request_human|book_appointment)$"
)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
ZERO_WIDTH = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


@dataclass(frozen=True)
class CleanText:
    """A patient message made safe to process."""

    text: str
    empty: bool = False
    truncated: bool = False
    payload_blocked: bool = False


def clean_text(raw: Any, max_chars: int) -> CleanText:
    """Normalise untrusted message text.

    Args:
        raw: whatever arrived in the message field (may be bytes, a number, None).
        max_chars: longest text passed on; longer messages are cut at a word boundary.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        raw = "" if raw is None else str(raw)
    text = unicodedata.normalize("NFC", raw)
    text = ZERO_WIDTH.sub("", CONTROL.sub(" ", text)).replace("\ufffd", " ")
    text = " ".join(text.split())
    if not text:
        return CleanText(text="", empty=True)
    truncated = len(text) > max_chars
    if truncated:
        cut = text[:max_chars]
        text = cut.rsplit(" ", 1)[0] if " " in cut[max_chars // 2:] else cut
    payload_blocked = False
    if text.startswith("/") and not ALLOWED_PAYLOADS.match(text):
        # Not one of our buttons: treat it as words, never as an intent payload.
        text = re.sub(r"^[/\s]+", "", text) or "slash"
        payload_blocked = True
    return CleanText(text=text, truncated=truncated, payload_blocked=payload_blocked)
