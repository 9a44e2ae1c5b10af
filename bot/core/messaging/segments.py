"""How many SMS segments a text travels as (what a carrier bills, and what may arrive out of order).

A text in the GSM 03.38 alphabet (GSM-7) fits 160 characters in one segment, and 153 per
segment once it is split (the rest of each segment carries the joining header); a
character of the extension table (``^ { } [ ] ~ \\ | €`` and form feed) takes two. Any
other character makes the whole text UCS-2: 70 UTF-16 code units in one segment, 67 per
segment once split. The figures are the GSM standard's, as Twilio documents them.

Shared by the SMS channel (to keep urgent texts and short answers within their segments)
and the dashboard (segments per conversation); the standard library only.
"""

from __future__ import annotations

from math import ceil
from typing import Iterable

#: GSM 03.38 basic character set.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table: each takes two characters (an escape and the character).
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can travel in the GSM-7 alphabet."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in text)


def units(text: str) -> tuple[int, bool]:
    """The text's length in its encoding's units, and whether that encoding is GSM-7."""
    if is_gsm7(text):
        return sum(2 if char in GSM7_EXTENDED else 1 for char in text), True
    return len(text.encode("utf-16-le")) // 2, False


def segments(text: str) -> int:
    """How many segments ``text`` is sent as (0 for an empty text)."""
    length, gsm7 = units(text)
    if length == 0:
        return 0
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm7 else (UCS2_SINGLE, UCS2_PART)
    return 1 if length <= single else ceil(length / part)


def total_segments(texts: Iterable[str]) -> int:
    """Segments of several texts, each sent on its own."""
    return sum(segments(text) for text in texts)
