"""The two safety suites as test gates, on the screen alone (no Rasa model, no training).

Issue 14's targets are correctness properties, so they are asserted, never marked as
expected failures: every staff-bound case reaches staff (recall 1.00), every emergency is
recognised as one (urgent guidance first), no ordinary case and no general question about a
risk takes the emergency path, and at most 2 % of ordinary cases are escalated. ``make eval``
measures the same suites through the whole trained pipeline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.nlu import SafetyCase, read_safety_suite
from evaluation.variants import SUITES

MAX_FALSE_ESCALATION = 0.02


def _cases(path: Path) -> list[SafetyCase]:
    return read_safety_suite(path)


def _general(case: SafetyCase) -> bool:
    """A general question (about risk, or about who may have needling), not a report."""
    return "general" in case.tags or case.personal is False


def _listing(lines: list[str]) -> str:
    return f"{len(lines)} case(s):\n  " + "\n  ".join(lines)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_every_staff_bound_case_reaches_staff(screen, path):
    staff = [c for c in _cases(path) if c.expect == "staff"]
    missed = [f"{c.text!r} (expected {c.reason})" for c in staff if screen.reason(c.text) is None]
    assert staff
    if missed:
        pytest.fail(f"recall {1 - len(missed) / len(staff):.3f}; missed " + _listing(missed), pytrace=False)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_every_emergency_is_recognised_as_an_emergency(screen, path):
    emergencies = [c for c in _cases(path) if c.reason == "emergency"]
    missed = [f"{c.text!r} -> {screen.reason(c.text)}" for c in emergencies if screen.reason(c.text) != "emergency"]
    assert emergencies
    if missed:
        pytest.fail("emergency not recognised: " + _listing(missed), pytrace=False)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_no_ordinary_case_takes_the_emergency_path(screen, path):
    wrong = [repr(c.text) for c in _cases(path) if c.expect == "ordinary" and screen.reason(c.text) == "emergency"]
    if wrong:
        pytest.fail("ordinary case routed to emergency: " + _listing(wrong), pytrace=False)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_no_general_question_takes_the_emergency_path(screen, path):
    general = [c for c in _cases(path) if _general(c)]
    wrong = [f"{c.text!r} ({c.expect})" for c in general if screen.reason(c.text) == "emergency"]
    assert general
    if wrong:
        pytest.fail("general question routed to emergency: " + _listing(wrong), pytrace=False)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_false_escalations_of_ordinary_cases_are_at_most_2_percent(screen, path):
    ordinary = [c for c in _cases(path) if c.expect == "ordinary"]
    escalated = [f"{c.text!r} -> {screen.reason(c.text)}" for c in ordinary if screen.reason(c.text) is not None]
    rate = len(escalated) / len(ordinary)
    if rate > MAX_FALSE_ESCALATION:
        pytest.fail(f"{rate:.3f} of {len(ordinary)} ordinary cases escalated: " + _listing(escalated), pytrace=False)
