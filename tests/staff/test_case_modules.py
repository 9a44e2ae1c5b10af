"""bot/dashboard/staff/cases.py split along its seams: each part imports on its own (no cycles) and
``bot.dashboard.staff.cases`` still offers the same objects the web handlers and tests use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARTS = ("case_errors", "case_query", "case_views", "case_store", "case_commands")


@pytest.mark.parametrize("part", PARTS)
def test_each_part_imports_first_without_a_cycle(part):
    done = subprocess.run([sys.executable, "-c", f"import bot.dashboard.staff.{part}"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_parts_hold_one_concept_each():
    from bot.dashboard.staff import case_commands, case_errors, case_query, case_store, case_views

    assert case_query.CaseFilter.__module__ == "bot.dashboard.staff.case_query"
    assert case_views.CaseSummary.__module__ == "bot.dashboard.staff.case_views"
    assert case_store.list_cases.__module__ == "bot.dashboard.staff.case_store"
    assert case_commands.set_status.__module__ == "bot.dashboard.staff.case_commands"
    assert issubclass(case_errors.InvalidInput, ValueError)
    # Views and parsing do no SQL: only the store and the commands talk to the database.
    for module in (case_query, case_views, case_errors):
        assert "sqlalchemy" not in Path(module.__file__).read_text(encoding="utf-8")


def test_cases_offers_every_name_its_callers_use():
    from bot.dashboard.staff import case_commands, case_query, case_store, case_views, cases

    assert cases.CaseFilter is case_query.CaseFilter
    assert cases.CaseDetail is case_views.CaseDetail
    assert cases.get_case is case_store.get_case
    assert cases.claim is case_commands.claim
    for name in cases.__all__:
        assert hasattr(cases, name), name
