"""What a turn by text costs and in what order it arrives: segments and the urgent guidance first.

* An FAQ answer by text is its short version and the MORE offer
  (:mod:`bot.assistant.messaging.more`); when that would take more than
  ``limits.answer_segments`` segments (``data/sms.yml``), the offer's shorter wording is
  used (:func:`fit_offer`).
* A red flag's urgent guidance is the first thing the patient reads: on a new number the
  assistant's own opening (or the channel's first-contact notice) comes after it, in its
  one-segment version ``urgent_disclosure`` (:func:`urgent_first`).

Segments are counted by :mod:`bot.core.messaging.segments` (GSM-7 160 / UCS-2 70).
"""

from __future__ import annotations

from typing import Any, Callable

from bot.core.messaging.segments import segments


def fit_offer(messages: list[dict[str, Any]], offer: str, short_offer: str, max_segments: int) -> list[dict[str, Any]]:
    """The turn with each MORE offer too costly for ``max_segments`` put in its shorter wording."""
    fitted = []
    for message in messages:
        text = str(message.get("text") or "")
        if offer and text.endswith(offer) and segments(text) > max_segments:
            message = {**message, "text": text[: -len(offer)] + short_offer}
        fitted.append(message)
    return fitted


def urgent_first(
    messages: list[dict[str, Any]], is_opening: Callable[[dict[str, Any]], bool], disclosure: str
) -> list[dict[str, Any]]:
    """A red flag's turn on a new number: its replies first, then ``disclosure`` where the opening was.

    The openings (the assistant's ``utter_disclosure``, the first-contact notice) are taken
    out and one ``disclosure`` goes right after the turn's first reply, the urgent guidance.
    """
    rest = [message for message in messages if not is_opening(message)]
    return rest[:1] + [{"text": disclosure}] + rest[1:]
