"""Splitting a long reply into text messages at sentence boundaries.

Twilio refuses a body over 1,600 characters and carriers split anything over one
segment, sometimes out of order; a reply is therefore cut into parts of at most
``limit`` characters (320 by default: two segments), each marked ``(1/3)``,
``(2/3)``... so the patient can tell the order. Cuts fall between sentences; a
sentence longer than a part is cut between words, and a word longer than a part
(a long link) is cut hard. Whitespace inside a reply becomes single spaces (a
paragraph break still ends a sentence).
"""

from __future__ import annotations

import re

DEFAULT_LIMIT = 320
# A sentence ends at . ! ? or … (optionally followed by closing quotes or brackets), then space.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (paragraph breaks end a sentence too)."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            end = match.start() + len(match.group().rstrip())
            pieces.append(paragraph[start:end].strip())
            start = match.end()
        if paragraph[start:].strip():
            pieces.append(paragraph[start:].strip())
    return [piece for piece in pieces if piece]


def _words(sentence: str, limit: int) -> list[str]:
    """A sentence longer than ``limit`` as pieces cut between words (or hard, for a huge word)."""
    pieces: list[str] = []
    current = ""
    for word in sentence.split(" "):
        while len(word) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= limit:
            current = candidate
        else:
            pieces.append(current)
            current = word
    if current:
        pieces.append(current)
    return pieces


def _pack(units: list[str], limit: int) -> list[str]:
    """Sentences packed greedily into parts of at most ``limit`` characters."""
    parts: list[str] = []
    current = ""
    for unit in units:
        for piece in _words(unit, limit) if len(unit) > limit else [unit]:
            candidate = f"{current} {piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                parts.append(current)
                current = piece
    if current:
        parts.append(current)
    return parts


def marker(index: int, total: int) -> str:
    """The part marker put before part ``index`` (1-based) of ``total``."""
    return f"({index}/{total}) "


def split_message(text: str, limit: int = DEFAULT_LIMIT, keep_whole: str = "") -> list[str]:
    """``text`` as text-message parts of at most ``limit`` characters, markers included.

    Args:
        text: the reply.
        limit: longest part, marker included.
        keep_whole: a last sentence (the numbered choices) kept in one part when it fits.
    """
    units = sentences(text)
    if keep_whole.strip():
        units.append(" ".join(keep_whole.split()))
    if not units:
        return []
    single = " ".join(units)
    if len(single) <= limit:
        return [single]
    for digits in (1, 2, 3):
        widest = 10**digits - 1
        parts = _pack(units, limit - len(marker(widest, widest)))
        if len(parts) <= widest:
            break
    count = len(parts)
    return [marker(i, count) + part for i, part in enumerate(parts, start=1)]
