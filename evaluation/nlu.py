"""Measuring the trained NLU: held-out accuracy, response selection, rejection, safety routing.

Everything goes through the full NLU pipeline of a trained model, including the
safety screen and the fallback classifier, because that is what patients get.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml
from sklearn.metrics import f1_score

from bot.core.safety.screen import is_emergency

STAFF_INTENTS = {"ask_contraindication", "report_adverse_event", "request_human"}
REJECTED = {"out_of_scope", "nlu_fallback"}


@dataclass(frozen=True)
class Example:
    """One labelled utterance; ``intent`` is the full retrieval intent (``faq/does_it_hurt``)."""

    text: str
    intent: str


@dataclass
class Prediction:
    """The pipeline's answer for one utterance."""

    example: Example
    intent: str
    response_key: Optional[str]
    confidence: float

    @property
    def full_intent(self) -> str:
        """Predicted intent with the selected FAQ topic, e.g. ``faq/does_it_hurt``."""
        if self.intent == "faq" and self.response_key:
            return self.response_key
        return self.intent


def read_examples(paths: Iterable[Path]) -> list[Example]:
    """Read Rasa YAML NLU files (intents and examples only)."""
    examples: list[Example] = []
    for path in paths:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in document.get("nlu", []):
            if "intent" not in block:
                continue
            for line in str(block.get("examples", "")).splitlines():
                line = line.strip()
                if line.startswith("- "):
                    examples.append(Example(text=line[2:].strip(), intent=block["intent"]))
    return examples


def read_dir(folder: Path) -> list[Example]:
    """All examples in a folder of NLU files."""
    return read_examples(sorted(folder.glob("*.yml")))


async def _parse_all(agent: Any, texts: list[str]) -> list[dict[str, Any]]:
    return [await agent.parse_message(text) for text in texts]


def predict(agent: Any, examples: list[Example]) -> list[Prediction]:
    """Run every example through the model's NLU pipeline."""
    parsed = asyncio.run(_parse_all(agent, [e.text for e in examples]))
    predictions = []
    for example, result in zip(examples, parsed):
        intent = result.get("intent") or {}
        selector = ((result.get("response_selector") or {}).get("faq") or {}).get("response") or {}
        predictions.append(
            Prediction(
                example=example,
                intent=intent.get("name") or "",
                response_key=selector.get("intent_response_key"),
                confidence=float(intent.get("confidence") or 0.0),
            )
        )
    return predictions


@dataclass
class Report:
    """Figures for one evaluation set."""

    examples: int = 0
    intent_accuracy: float = 0.0
    intent_macro_f1: float = 0.0
    response_selection_accuracy: float = 0.0
    out_of_scope_rejection: float = 0.0
    out_of_scope_given_faq: int = 0
    out_of_scope_faq_answers: list[tuple[str, str]] = field(default_factory=list)
    staff_routed: float = 0.0
    staff_missed: list[str] = field(default_factory=list)
    confusions: list[tuple[str, str, int]] = field(default_factory=list)
    errors: list[tuple[str, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return dict(self.__dict__)


def _base(intent: str) -> str:
    return intent.split("/", 1)[0]


def report(predictions: list[Prediction]) -> Report:
    """Compute the figures of a held-out or cross-validation evaluation."""
    result = Report(examples=len(predictions))
    if not predictions:
        return result
    truth = [_base(p.example.intent) for p in predictions]
    guess = [p.intent for p in predictions]
    result.intent_accuracy = sum(t == g for t, g in zip(truth, guess)) / len(truth)
    labels = sorted(set(truth))
    result.intent_macro_f1 = float(f1_score(truth, guess, labels=labels, average="macro", zero_division=0))

    faq = [p for p in predictions if p.example.intent.startswith("faq/")]
    if faq:
        result.response_selection_accuracy = sum(p.full_intent == p.example.intent for p in faq) / len(faq)

    oos = [p for p in predictions if p.example.intent == "out_of_scope"]
    if oos:
        result.out_of_scope_rejection = sum(p.intent in REJECTED for p in oos) / len(oos)
        result.out_of_scope_faq_answers = [(p.example.text, p.full_intent) for p in oos if p.intent == "faq"]
        result.out_of_scope_given_faq = len(result.out_of_scope_faq_answers)

    staff = [p for p in predictions if p.example.intent in STAFF_INTENTS]
    if staff:
        routed = [p for p in staff if p.intent in STAFF_INTENTS]
        result.staff_routed = len(routed) / len(staff)
        result.staff_missed = [p.example.text for p in staff if p.intent not in STAFF_INTENTS]

    pairs = Counter(
        (p.example.intent, p.full_intent) for p in predictions if p.full_intent != p.example.intent
    )
    result.confusions = [(t, g, n) for (t, g), n in pairs.most_common(15)]
    result.errors = [
        (p.example.text, p.example.intent, p.full_intent) for p in predictions if p.full_intent != p.example.intent
    ]
    return result


@dataclass(frozen=True)
class SafetyCase:
    """One case of the safety suite."""

    text: str
    expect: str
    reason: Optional[str] = None
    personal: Optional[bool] = None
    tags: tuple[str, ...] = ()


def read_safety_suite(path: Path) -> list[SafetyCase]:
    """Read ``tests/safety/suite.yml``."""
    cases = yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]
    return [
        SafetyCase(
            text=c["text"], expect=c["expect"], reason=c.get("reason"), personal=c.get("personal"),
            tags=tuple(c.get("tags") or ()),
        )
        for c in cases
    ]


@dataclass
class SafetyReport:
    """Recall on staff-bound cases and false escalations on ordinary ones."""

    staff_cases: int = 0
    ordinary_cases: int = 0
    recall: float = 0.0
    false_escalation_rate: float = 0.0
    emergency_recall: float = 0.0
    missed: list[str] = field(default_factory=list)
    #: Emergencies that reached staff without being recognised as emergencies.
    emergencies_missed: list[str] = field(default_factory=list)
    false_escalations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return dict(self.__dict__)


def safety_report(agent: Any, cases: list[SafetyCase]) -> SafetyReport:
    """Route every case through the model and count staff-bound outcomes."""
    parsed = asyncio.run(_parse_all(agent, [case.text for case in cases]))
    result = SafetyReport()
    staff_hits = emergency_total = emergency_hits = ordinary_escalated = 0
    for case, parse in zip(cases, parsed):
        intent = (parse.get("intent") or {}).get("name")
        escalated = intent in STAFF_INTENTS
        if case.expect == "staff":
            result.staff_cases += 1
            staff_hits += escalated
            if not escalated:
                result.missed.append(f"{case.text} -> {intent}")
            if case.reason == "emergency":
                emergency_total += 1
                if is_emergency(parse):
                    emergency_hits += 1
                else:
                    result.emergencies_missed.append(f"{case.text} -> {intent}")
        else:
            result.ordinary_cases += 1
            ordinary_escalated += escalated
            if escalated:
                result.false_escalations.append(f"{case.text} -> {intent}")
    result.recall = staff_hits / result.staff_cases if result.staff_cases else 0.0
    result.false_escalation_rate = ordinary_escalated / result.ordinary_cases if result.ordinary_cases else 0.0
    result.emergency_recall = emergency_hits / emergency_total if emergency_total else 0.0
    return result
