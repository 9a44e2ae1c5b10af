"""The safety screen's verdict on one message: why it must reach staff (if at all), and the evidence."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from bot.core.vocabulary import Priority, Reason, vocabulary

logger = logging.getLogger(__name__)

#: Where the parse data carries the verdict (set by :mod:`bot.assistant.nlp.safety_component`).
PARSE_DATA_KEY = "safety"


@dataclass
class Evidence:
    """One finding in the message, the context ConText gave it, and the table row that decided it."""

    label: str
    category: str
    text: str
    contexts: list[str] = field(default_factory=list)
    #: The id of the decision-table row that decided this finding (``None``: no row fits).
    rule: Optional[str] = None
    #: What the row said: a reason, ``"none"`` (judged ordinary), ``"defer"`` (no judgement), or a signal.
    outcome: Optional[str] = None
    #: The outcome is a reason to involve staff.
    gives_reason: bool = False
    #: ``lexical`` (a catalogue or pattern wording) or ``semantic`` (nearest everyday phrasing).
    detector: str = "lexical"

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "category": self.category,
            "text": self.text,
            "contexts": list(self.contexts),
            "rule": self.rule,
            "outcome": self.outcome,
            "gives_reason": self.gives_reason,
            "detector": self.detector,
        }


@dataclass
class Verdict:
    """Why a message must reach staff (``reason``), how soon (``priority``) and on what evidence."""

    reason: Optional[str] = None
    priority: Optional[str] = None
    evidence: list[Evidence] = field(default_factory=list)
    #: About the patient or someone they speak for (not a general question).
    personal: bool = False
    third_party: bool = False
    #: Message-wide facts: signals of the table (``TREATED``), ``QUESTION``, ``TREATMENT_MENTIONED``.
    signals: list[str] = field(default_factory=list)
    #: The rationale of the row that gave the reason.
    rationale: Optional[str] = None
    #: For an emergency: the red-flag catalogue's class (``breathing``, ``stroke`` ...; ``None``
    #: when no class fits, e.g. "should I go to A&E?") and its care level (``"999"``, ``"111"``).
    red_flag_class: Optional[str] = None
    care: Optional[str] = None
    #: For an adverse event: the after-effect reported (``soreness``, ``bruising`` ...), or
    #: ``"unplaced"`` when a new symptom after a treatment fits no known after-effect.
    adverse_class: Optional[str] = None
    #: The message's language (ISO 639-1), ``"en"`` when English or undetermined.
    language: str = "en"

    @property
    def staff_bound(self) -> bool:
        """The screen alone sends this message to staff."""
        return self.reason is not None

    def cleared_for(self, labels: frozenset) -> bool:
        """The screen judged every finding of ``labels`` ordinary (ruled out, a question about
        risk, an expected after-effect), and there is at least one: a staff-bound guess of the
        model that such findings would explain has nothing behind it."""
        relevant = [e for e in self.evidence if e.label in labels and e.rule]
        return self.reason is None and bool(relevant) and all(e.outcome == "none" for e in relevant)

    @property
    def cleared(self) -> bool:
        """Every health finding, request for a person and general question was judged ordinary."""
        return self.cleared_for(frozenset(
            {"CONDITION", "MEDICATION", "DEVICE", "SYMPTOM", "RED_FLAG", "HUMAN_REQUEST", "GENERAL_CONTRAINDICATION", "CARE_SEEKING"}
        ))

    @property
    def matched_terms(self) -> list[str]:
        """``category:text`` of the findings that gave a reason."""
        return [f"{e.category}:{e.text.lower()}" for e in self.evidence if e.gives_reason]

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, stored in the parse data under ``safety`` and in escalation records."""
        return {
            "reason": self.reason,
            "priority": self.priority,
            "personal": self.personal,
            "third_party": self.third_party,
            "signals": list(self.signals),
            "rationale": self.rationale,
            "red_flag_class": self.red_flag_class,
            "care": self.care,
            "adverse_class": self.adverse_class,
            "language": self.language,
            "cleared": self.cleared,
            "evidence": [e.as_dict() for e in self.evidence],
            "matched_terms": self.matched_terms,
        }



def _flag(value: Any) -> Optional[bool]:
    return bool(value) if value is not None else None


def _text(value: Any) -> Optional[str]:
    return str(value) if value is not None and value != "" else None


@dataclass(frozen=True)
class SafetyVerdict:
    """The verdict as it crosses from the Rasa server into the channels, the actions and the
    dashboard: ``parse_data["safety"]``, read once into typed fields.

    ``reason`` is the reason the assistant acts on (the screen's, or the model's staff-bound
    guess the screen did not clear); ``priority`` is the decision table's for that reason,
    the one the escalation store keeps. A message with no verdict (a button payload, an
    older tracker) reads as an empty verdict: no reason, nothing personal.
    """

    reason: Optional[Reason] = None
    #: The screen's own reason, before the model's guess was weighed.
    screen_reason: Optional[Reason] = None
    personal: Optional[bool] = None
    third_party: Optional[bool] = None
    #: For an emergency: the red-flag class and its level of care (``"999"``, ``"111"``).
    red_flag_class: Optional[str] = None
    care: Optional[str] = None
    #: For an adverse event: the after-effect reported, or ``"unplaced"``.
    adverse_class: Optional[str] = None
    language: Optional[str] = None
    matched_terms: tuple[str, ...] = ()
    #: The NLU model's own intent name and confidence, kept for audit.
    model_intent: Optional[str] = None
    model_confidence: Optional[float] = None
    rerouted: bool = False
    demoted: bool = False

    @property
    def priority(self) -> Optional[Priority]:
        """How soon staff act on this message (the decision table's priority of ``reason``)."""
        name = vocabulary().priority_of(self.reason)
        return Priority(name) if name else None

    @property
    def emergency(self) -> bool:
        """The message gets urgent guidance first."""
        return self.reason == Reason.emergency

    @classmethod
    def from_parse_data(cls, parse_data: Any) -> "SafetyVerdict":
        """The verdict in a message's parse data (``latest_message`` of a tracker)."""
        safety = parse_data.get(PARSE_DATA_KEY) if isinstance(parse_data, Mapping) else None
        return cls.from_dict(safety)

    @classmethod
    def from_dict(cls, safety: Any) -> "SafetyVerdict":
        """The verdict from its dictionary form (``parse_data["safety"]``); anything else is empty."""
        if not isinstance(safety, Mapping):
            return cls()
        model = safety.get("model_intent")
        model = model if isinstance(model, Mapping) else {}
        terms = safety.get("matched_terms")
        confidence = model.get("confidence")
        return cls(
            reason=_reason(safety.get("reason")),
            screen_reason=_reason(safety.get("screen_reason")),
            personal=_flag(safety.get("personal")),
            third_party=_flag(safety.get("third_party")),
            red_flag_class=_text(safety.get("red_flag_class")),
            care=_text(safety.get("care")),
            adverse_class=_text(safety.get("adverse_class")),
            language=_text(safety.get("language")),
            matched_terms=tuple(str(t) for t in terms) if isinstance(terms, (list, tuple)) else (),
            model_intent=_text(model.get("name")),
            model_confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
            rerouted=bool(safety.get("rerouted")),
            demoted=bool(safety.get("demoted")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (enum members as their names)."""
        return {
            "reason": self.reason.value if self.reason else None,
            "screen_reason": self.screen_reason.value if self.screen_reason else None,
            "priority": self.priority.value if self.priority else None,
            "personal": self.personal,
            "third_party": self.third_party,
            "red_flag_class": self.red_flag_class,
            "care": self.care,
            "adverse_class": self.adverse_class,
            "language": self.language,
            "matched_terms": list(self.matched_terms),
            "model_intent": {"name": self.model_intent, "confidence": self.model_confidence},
            "rerouted": self.rerouted,
            "demoted": self.demoted,
        }


def _reason(value: Any) -> Optional[Reason]:
    if value is None or value == "":
        return None
    try:
        return Reason(value)
    except ValueError:
        # Not a reason of the table in force (an older tracker after a rename): no reason to act on.
        logger.warning("safety verdict with a reason the decision table does not define; read as none")
        return None
