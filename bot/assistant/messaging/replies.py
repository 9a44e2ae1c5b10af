"""The assistant's replies of one turn as text messages: numbered choices, then parts of at most 320 characters.

Rasa hands the channel message dicts (``text``, ``buttons``, ``quick_replies``,
``image``, ``custom``...). A text message carries only text, so:

* buttons and quick replies become a last line of numbered choices
  (:mod:`bot.assistant.messaging.choices`), without their payloads;
* an image becomes its link; ``custom`` payloads are for the web widget and are left out;
* each message is split into marked parts (:mod:`bot.assistant.messaging.chunks`), the choices
  line kept whole in the last part.

The choices offered last in the turn are the ones a numbered answer refers to; a turn
that offers none makes earlier numbers stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from bot.assistant.messaging.choices import Choice, choices_from_buttons, choices_line
from bot.assistant.messaging.chunks import split_message


@dataclass
class RenderedTurn:
    """The text parts to send, in order, and the choices they offer (empty: none)."""

    parts: list[str] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)


def render_turn(messages: Iterable[dict[str, Any]], limit: int) -> RenderedTurn:
    """Text parts for the messages of one turn, in order."""
    turn = RenderedTurn()
    for message in messages:
        text = " ".join(str(message.get("text") or "").split())
        buttons = message.get("buttons") or message.get("quick_replies") or []
        choices = choices_from_buttons(buttons)
        image = message.get("image")
        if isinstance(image, str) and image.strip():
            text = f"{text} {image.strip()}".strip()
        if not text and not choices:
            continue
        turn.parts.extend(split_message(text, limit, keep_whole=choices_line(choices)))
        if choices:
            turn.choices = choices
    return turn
