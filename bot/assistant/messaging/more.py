"""Short answers first by text message, and the full answer when the patient replies MORE.

Every curated FAQ answer has a version that fits one text message (``metadata.kb.short``
in ``data/responses/faq.yml``, read through :func:`bot.core.knowledge.catalog.short_answers`).
On SMS and WhatsApp an FAQ answer goes out as that short version, filled in for the
clinic, followed by an invitation such as "Reply MORE for the full answer." (wording in
``data/sms.yml``). The full answer, exactly as the assistant gave it, is remembered with
the conversation's open choices (:mod:`bot.assistant.messaging.service`): the patient's MORE (or
"more please", "tell me more": the phrases are data too) sends it, split into marked
parts like any long reply, and closes the offer. A later turn that offers nothing new
makes MORE stale, like a numbered choice: it is then an ordinary message for the assistant.

Only the text changes: each message keeps its ``utter_action`` and its ``metadata.kb``
(version, review date, sources), and the assistant's conversation records the full answer
with them as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from bot.core.clinic import Clinic
from bot.core.knowledge.catalog import KnowledgeBase, short_answers

_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)
#: The stored entry's key among the conversation's open choices.
MORE_KEY = "more"


@dataclass(frozen=True)
class FullAnswer:
    """The answer MORE sends: its response name and its full text as the assistant gave it."""

    name: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form, stored with the conversation's open choices."""
        return {MORE_KEY: self.name, "text": self.text}

    @classmethod
    def from_dict(cls, raw: Any) -> Optional["FullAnswer"]:
        """A stored entry, or ``None`` if the value is not one (a numbered choice, say)."""
        if not isinstance(raw, dict):
            return None
        name, text = raw.get(MORE_KEY), raw.get("text")
        if not isinstance(name, str) or not isinstance(text, str) or not text.strip():
            return None
        return cls(name, text)


def stored_full_answer(stored: Any) -> Optional[FullAnswer]:
    """The full answer among a conversation's stored choices, if MORE is open."""
    for raw in stored or []:
        found = FullAnswer.from_dict(raw)
        if found is not None:
            return found
    return None


def words(text: str) -> str:
    """``text`` in lower case, punctuation dropped, single spaces: how replies are compared."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def asks_for_more(text: Optional[str], phrases: Iterable[str]) -> bool:
    """Whether the whole message is one of the MORE phrases ("MORE", "more please!", "Tell me more.")."""
    return bool(text) and words(text) in {words(phrase) for phrase in phrases}


@dataclass(frozen=True)
class ShortAnswers:
    """The one-text version of each curated answer that has one, filled in for the clinic."""

    texts: Mapping[str, str]

    @classmethod
    def load(cls, clinic: Clinic, kb: Optional[KnowledgeBase] = None) -> "ShortAnswers":
        """Read the short versions from the knowledge base and fill in the clinic's facts."""
        values = clinic.template_values()
        return cls({name: text.format_map(values) for name, text in short_answers(kb).items()})

    def shorten(
        self, messages: Iterable[dict[str, Any]], invitation: str
    ) -> tuple[list[dict[str, Any]], Optional[FullAnswer]]:
        """The turn with each curated answer in its short version plus ``invitation``, and what MORE sends.

        MORE sends the last curated answer of the turn (a turn normally has one).
        """
        shortened: list[dict[str, Any]] = []
        full: Optional[FullAnswer] = None
        for message in messages:
            name = message.get("utter_action")
            text = " ".join(str(message.get("text") or "").split())
            short = self.texts.get(name) if isinstance(name, str) else None
            if not short or not text:
                shortened.append(message)
                continue
            shortened.append({**message, "text": f"{short} {invitation}".strip()})
            full = FullAnswer(name, text)
        return shortened, full
