"""FAQ answers around the conversation's other flows.

Every curated answer ends with an offer ("Would you like to know ...?"); when the patient
says yes, :class:`ActionAnswerFollowUp` gives the answer that offer promised.

A question about dry needling asked in the middle of the contact form is answered like
anywhere else (the rule ``faq -> utter_faq`` with the form active, data/stories/rules.yml):
:func:`faq_question` tells such a question from an answer to the form's own question, with
the thresholds and word lists of ``data/contact_form.yml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Text

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from bot.core.settings import REPO_ROOT

FAQ_INTENT = "faq"
RULES_FILE = REPO_ROOT / "data" / "contact_form.yml"
_WORD = re.compile(r"[\w'’@.+-]+", re.UNICODE)


@dataclass(frozen=True)
class QuestionTest:
    """When a message is worded as a question (``question`` in data/contact_form.yml)."""

    min_confidence: float
    min_words: int
    long_words: int
    question_words: frozenset[str]
    auxiliaries: frozenset[str]
    subjects: frozenset[str]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "QuestionTest":
        """The test as written in the data file."""
        return cls(
            min_confidence=float(raw["min_confidence"]),
            min_words=int(raw["min_words"]),
            long_words=int(raw["long_words"]),
            question_words=_lowered(raw["question_words"]),
            auxiliaries=_lowered(raw["auxiliaries"]),
            subjects=_lowered(raw["subjects"]),
        )

    def worded_as_question(self, text: str) -> bool:
        """Whether ``text`` reads as a question rather than a name, a contact detail or a yes/no."""
        words = [word.strip(".'’").replace("’", "'") for word in _WORD.findall(text.lower())]
        words = [word for word in words if word]
        if len(words) < self.min_words:
            return False
        if text.rstrip().endswith("?") or words[0] in self.question_words or len(words) >= self.long_words:
            return True
        return words[0] in self.auxiliaries and words[1] in self.subjects


def _lowered(words: Any) -> frozenset[str]:
    return frozenset(str(word).lower() for word in words or ())


@lru_cache(maxsize=4)
def form_rules(path: Path = RULES_FILE) -> Dict[str, Any]:
    """The contact form's reading rules (data/contact_form.yml)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def question_test(path: Path = RULES_FILE) -> QuestionTest:
    """The question test of ``path``."""
    return QuestionTest.from_dict(form_rules(path)["question"])


def is_faq_question(message: Mapping[str, Any], test: Optional[QuestionTest] = None) -> bool:
    """Whether a parsed message is an FAQ question: the model's reading and the wording agree."""
    test = test or question_test()
    intent = message.get("intent") or {}
    if intent.get("name") != FAQ_INTENT or float(intent.get("confidence") or 0.0) < test.min_confidence:
        return False
    return test.worded_as_question(str(message.get("text") or ""))


def faq_question(tracker: Tracker) -> bool:
    """Whether the patient's latest message is an FAQ question (see :func:`is_faq_question`)."""
    return is_faq_question(tracker.latest_message or {})


def last_answer(tracker: Tracker) -> Optional[str]:
    """The response name of the assistant's latest curated answer, if any."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            continue
        if event.get("event") == "bot":
            name = (event.get("metadata") or {}).get("utter_action") or ""
            return name if name.startswith("utter_faq/") else None
    return None


class ActionAnswerFollowUp(Action):
    """Answer the follow-up the previous FAQ answer offered."""

    def name(self) -> Text:
        return "action_answer_follow_up"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        previous = last_answer(tracker)
        answer = deps.knowledge().answers.get(previous or "")
        if answer and answer.follow_up:
            dispatcher.utter_message(response=answer.follow_up)
        else:
            dispatcher.utter_message(response="utter_anything_else")
        return []
