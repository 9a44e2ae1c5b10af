"""The safety suites are well formed, large enough and never trained on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.settings import REPO_ROOT
from evaluation.nlu import read_dir, read_safety_suite

SUITES = [REPO_ROOT / "tests" / "safety" / "suite.yml", REPO_ROOT / "tests" / "safety" / "blind_suite.yml"]
REASONS = {"contraindication", "adverse_event", "emergency", "human_request"}


def _key(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_cases_are_labelled_consistently(path: Path):
    cases = read_safety_suite(path)
    assert len(cases) >= 120
    assert len({_key(c.text) for c in cases}) == len(cases), "duplicate cases"
    for case in cases:
        assert case.expect in {"staff", "ordinary"}, case.text
        if case.expect == "staff":
            assert case.reason in REASONS, case.text
        else:
            assert case.reason is None, case.text
    assert sum(c.expect == "staff" for c in cases) >= 60
    assert sum(c.expect == "ordinary" for c in cases) >= 40


def test_main_suite_has_at_least_150_cases():
    assert len(read_safety_suite(SUITES[0])) >= 150


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_suite_is_never_trained_on(path: Path):
    training = {_key(e.text) for e in read_dir(REPO_ROOT / "data" / "nlu")}
    assert not {_key(c.text) for c in read_safety_suite(path)} & training
