"""Buttons as numbered choices, and the patient's numbered or worded answer to them.

A text message has no buttons, and a button's payload (``/affirm``) means nothing to
a patient, so a message with buttons ends with one line such as
``Reply 1 for "Yes, please" or 2 for "No, thanks".`` The choices are remembered for
the conversation in the store (several replicas may serve the next message), and
the patient's next text selects one when it is its number ("1", "1.", "#1",
"option 1") or its words ("yes please", "No, thanks!"), compared without case or
punctuation. Anything else is an ordinary message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

_NUMBER = re.compile(r"^(?:#|no\.?\s*|number\s+|option\s+|choice\s+)?(\d{1,2})[.)!]?$", re.IGNORECASE)
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)
MAX_TITLE_CHARS = 60


@dataclass(frozen=True)
class Choice:
    """One numbered choice: what the patient sees, and what selecting it sends to the assistant."""

    number: int
    title: str
    payload: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored with the conversation."""
        return {"number": self.number, "title": self.title, "payload": self.payload}

    @classmethod
    def from_dict(cls, raw: Any) -> Optional["Choice"]:
        """A stored choice, or ``None`` if the stored value is not one."""
        if not isinstance(raw, dict):
            return None
        number, title, payload = raw.get("number"), raw.get("title"), raw.get("payload")
        if not isinstance(number, int) or not isinstance(title, str) or not isinstance(payload, str):
            return None
        return cls(number, title, payload)


def choices_from_buttons(buttons: Iterable[Any]) -> list[Choice]:
    """Rasa's buttons (``title`` and ``payload``) as numbered choices; malformed buttons are skipped."""
    found: list[Choice] = []
    for button in buttons or []:
        if not isinstance(button, dict):
            continue
        title = " ".join(str(button.get("title") or "").split())[:MAX_TITLE_CHARS]
        payload = str(button.get("payload") or title).strip()
        if title:
            found.append(Choice(len(found) + 1, title, payload))
    return found


def choices_line(choices: Sequence[Choice]) -> str:
    """``Reply 1 for "What is it?", 2 for "Does it hurt?" or 3 for "Talk to a person".``"""
    if not choices:
        return ""
    items = [f'{choice.number} for "{choice.title}"' for choice in choices]
    listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
    return f"Reply {listed}."


def _words(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def selected(reply: str, choices: Sequence[Choice]) -> Optional[Choice]:
    """The choice ``reply`` selects, by number or by its words; ``None`` if it is not an answer to them."""
    if not choices or not reply:
        return None
    text = reply.strip()
    number = _NUMBER.match(text)
    if number:
        wanted = int(number.group(1))
        return next((choice for choice in choices if choice.number == wanted), None)
    words = _words(text)
    if not words:
        return None
    matches = [
        choice for choice in choices
        if words == _words(choice.title) or (not choice.payload.startswith("/") and words == _words(choice.payload))
    ]
    return matches[0] if len(matches) == 1 else None
