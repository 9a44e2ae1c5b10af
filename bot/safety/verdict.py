"""The safety screen's verdict on one message: why it must reach staff (if at all) and the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

#: Reasons from the most to the least serious, with the escalation priority of each.
#: The single definition of the severity order (``data/safety/decision_table.yml`` names
#: these reasons; :func:`more_serious` compares them).
SEVERITY = ("emergency", "adverse_event", "contraindication", "human_request")
PRIORITY = {"emergency": "urgent", "adverse_event": "high", "contraindication": "normal", "human_request": "normal"}


def rank(reason: Optional[str]) -> int:
    """Position of ``reason`` in :data:`SEVERITY` (0 is the most serious; no reason ranks last)."""
    return SEVERITY.index(reason) if reason in SEVERITY else len(SEVERITY)


def more_serious(a: Optional[str], b: Optional[str]) -> Optional[str]:
    """The more serious of two reasons (``None`` is no reason)."""
    return a if rank(a) <= rank(b) else b


@dataclass
class Evidence:
    """One finding in the message, with the context the ConText step gave it."""

    label: str
    category: str
    text: str
    contexts: list[str] = field(default_factory=list)
    #: The decision-table row this finding matched (its id), if any.
    rule: Optional[str] = None
    reason: Optional[str] = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "category": self.category,
            "text": self.text,
            "contexts": list(self.contexts),
            "rule": self.rule,
            "reason": self.reason,
        }


@dataclass
class Verdict:
    """Why a message must reach staff (``reason``), how soon (``priority``) and on what evidence."""

    reason: Optional[str] = None
    evidence: list[Evidence] = field(default_factory=list)
    #: About the patient or someone they speak for (not a general question).
    personal: bool = False
    third_party: bool = False
    #: Message-level facts the decision used (e.g. "after_treatment", "human_request").
    signals: list[str] = field(default_factory=list)
    rationale: Optional[str] = None

    @property
    def priority(self) -> Optional[str]:
        return PRIORITY.get(self.reason) if self.reason else None

    @property
    def staff_bound(self) -> bool:
        return self.reason is not None

    @property
    def matched_terms(self) -> list[str]:
        """``category:text`` of the findings behind the verdict."""
        return [f"{e.category}:{e.text.lower()}" for e in self.evidence if e.reason]

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, stored in the parse data under ``safety`` and in escalation records."""
        return {
            "reason": self.reason,
            "priority": self.priority,
            "personal": self.personal,
            "third_party": self.third_party,
            "signals": list(self.signals),
            "rationale": self.rationale,
            "evidence": [e.as_dict() for e in self.evidence],
            "matched_terms": self.matched_terms,
        }
