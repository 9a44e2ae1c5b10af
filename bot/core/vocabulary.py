"""The clinical vocabulary: why a conversation reaches staff, how soon, and what staff read.

One definition, in the ``reasons`` section of the decision table
(``data/safety/decision_table.yml``): each reason, most serious first, with its
``priority`` (how soon staff act), the staff ``intent`` the assistant routes it to, and
the staff-facing ``label`` the dashboard shows. Everything else is derived from it here:

* :class:`Reason` and :class:`Priority`, the enums the escalation store keeps (their
  values are the table's names, so the stored values are the table's words);
* the severity order of reasons and the urgency order of priorities (a priority ranks
  where the most serious reason carrying it stands);
* each reason's priority (the verdict's and the stored record's), intent and label.

A leaf module: the standard library and PyYAML only, so the Rasa server, the action server
and the staff web app (``.venv-web``, no Rasa) all read the same words.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

#: Where the screen's rule files live: ``SAFETY_RULES_DIR``, or ``data/safety`` of the repository.
RULES_DIR = Path(os.environ.get("SAFETY_RULES_DIR") or Path(__file__).resolve().parents[2] / "data" / "safety")
TABLE_FILE = "decision_table.yml"
#: The keys a reason may carry in the table.
REASON_KEYS = frozenset({"priority", "intent", "label", "meaning"})


class VocabularyError(ValueError):
    """The ``reasons`` section of the decision table is malformed."""


@dataclass(frozen=True)
class ReasonSpec:
    """One reason to involve staff, as the table defines it."""

    name: str
    priority: str
    intent: str
    label: str
    meaning: str = ""


@dataclass(frozen=True)
class Vocabulary:
    """The table's reasons, most serious first, and what follows from them."""

    reasons: tuple[ReasonSpec, ...]

    @property
    def severity(self) -> tuple[str, ...]:
        """Reason names, most serious first."""
        return tuple(spec.name for spec in self.reasons)

    @property
    def priorities(self) -> tuple[str, ...]:
        """Priority names, most urgent first: in the order the severity order first reaches them."""
        return tuple(dict.fromkeys(spec.priority for spec in self.reasons))

    @property
    def priority_rank(self) -> dict[str, int]:
        """Priority name -> rank (0 for the most urgent)."""
        return {name: rank for rank, name in enumerate(self.priorities)}

    @property
    def priority(self) -> dict[str, str]:
        """Reason -> priority."""
        return {spec.name: spec.priority for spec in self.reasons}

    @property
    def intent(self) -> dict[str, str]:
        """Reason -> the staff intent the assistant routes it to."""
        return {spec.name: spec.intent for spec in self.reasons}

    @property
    def labels(self) -> dict[str, str]:
        """Reason -> what staff read on the dashboard."""
        return {spec.name: spec.label for spec in self.reasons}

    @property
    def priority_labels(self) -> dict[str, str]:
        """Priority -> what staff read ("urgent" -> "Urgent")."""
        return {name: humanise(name) for name in self.priorities}

    @property
    def reason_of_intent(self) -> dict[str, str]:
        """Staff intent -> the reason it stands for when the NLU model alone chose it: the least
        serious reason routed to that intent (the model alone never claims an emergency)."""
        return {spec.intent: spec.name for spec in self.reasons}

    def spec(self, reason: str) -> ReasonSpec:
        """The table's entry for ``reason``; :class:`KeyError` for an unknown one."""
        for spec in self.reasons:
            if spec.name == reason:
                return spec
        raise KeyError(reason)

    def priority_of(self, reason: Any) -> Optional[str]:
        """The priority of ``reason`` (a name or an enum member); ``None`` for no or an unknown reason."""
        name = getattr(reason, "value", reason)
        return self.priority.get(name) if isinstance(name, str) else None

    def rank(self, reason: Optional[str]) -> int:
        """0 for the most serious reason; no (or an unknown) reason ranks last."""
        severity = self.severity
        return severity.index(reason) if reason in severity else len(severity)

    def most_serious(self, reasons: Any) -> Optional[str]:
        """The most serious of ``reasons`` (``None`` when none of them is a reason)."""
        ranked = sorted((r for r in reasons if r in self.severity), key=self.rank)
        return ranked[0] if ranked else None


def humanise(name: str) -> str:
    """``human_request`` -> "Human request": the label of a word the table gives none for."""
    return name.replace("_", " ").capitalize()


def parse_reasons(reasons: Any) -> Vocabulary:
    """The vocabulary from the table's ``reasons`` mapping (in severity order), checked.

    ``priority`` and ``intent`` are required; ``label`` defaults to the humanised name.
    """
    if not isinstance(reasons, Mapping) or not reasons:
        raise VocabularyError("'reasons' must map each reason to its priority and intent")
    specs = []
    for name, entry in reasons.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise VocabularyError(f"reason {name!r}: the name must be a plain word (letters, digits, _)")
        if not isinstance(entry, Mapping):
            raise VocabularyError(f"reason {name}: needs priority and intent")
        unknown = set(entry) - REASON_KEYS
        if unknown:
            raise VocabularyError(f"reason {name}: unknown keys {sorted(unknown)}")
        for key in ("priority", "intent"):
            if not isinstance(entry.get(key), str) or not entry[key].isidentifier():
                raise VocabularyError(f"reason {name}: needs a {key} (a plain word)")
        label = entry.get("label", humanise(name))
        if not isinstance(label, str) or not label.strip():
            raise VocabularyError(f"reason {name}: the label must be text")
        specs.append(ReasonSpec(name, entry["priority"], entry["intent"], label, str(entry.get("meaning") or "")))
    return Vocabulary(tuple(specs))


def load_vocabulary(path: Path) -> Vocabulary:
    """The vocabulary of a decision-table file."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise VocabularyError(f"{path}: not a decision table")
    return parse_reasons(data.get("reasons"))


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The vocabulary in force (``RULES_DIR``), read once per process."""
    return load_vocabulary(RULES_DIR / TABLE_FILE)


def _str_enum(name: str, values: tuple[str, ...], doc: str) -> Any:
    kind = enum.Enum(name, [(value, value) for value in values], type=str, module=__name__)
    kind.__doc__ = doc
    return kind


#: Why a conversation was escalated (the table's reasons, most serious first).
Reason = _str_enum("Reason", vocabulary().severity, "Why a conversation was escalated.")
#: How soon staff should act (most urgent first).
Priority = _str_enum("Priority", vocabulary().priorities, "How soon staff should act.")
