"""The safety screen's verdict on one message: why it must reach staff (if at all), and the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


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

