"""Metamorphic tests of the safety screen (issue 14, item 4): the ordinary variants.

Invariants a (a neutral context), c1 (a red flag asked about as a risk) and d (a negated
finding): none may make an ordinary question staff-bound or an emergency, and together they
give the false-escalation rate. The other invariants are in test_metamorphic.py; the two
modules are screened on separate xdist workers when two are free (tests/safety/conftest.py).
"""

from __future__ import annotations

import pytest

from evaluation import metamorphic

#: Target of issue 14: false escalations of ordinary questions at most 2 %, variants included.
MAX_FALSE_ESCALATION = 0.02


@pytest.mark.parametrize("key, min_cases, min_variants", [("a", 3000, 7000), ("c1", 40, 350), ("d", 100, 300)])
def test_each_invariant_is_checked_on_enough_variants(metamorphic_results, key, min_cases, min_variants):
    # A relation whose premise the screen breaks on the seeds would pass vacuously.
    result = metamorphic_results[key]
    assert result.cases >= min_cases and result.variants >= min_variants, (result.cases, result.variants)


def test_a_neutral_context_never_makes_an_ordinary_question_staff_bound(metamorphic_results):
    result = metamorphic_results["a"]
    if result.failures:
        pytest.fail(metamorphic.failure_report(result), pytrace=False)


def test_c1_a_red_flag_asked_about_as_a_risk_is_never_an_emergency(metamorphic_results):
    result = metamorphic_results["c1"]
    if result.failures:
        pytest.fail(metamorphic.failure_report(result), pytrace=False)


def test_d_a_negated_finding_never_escalates_on_its_own(metamorphic_results):
    result = metamorphic_results["d"]
    if result.failures:
        pytest.fail(metamorphic.failure_report(result), pytrace=False)


def test_false_escalations_of_ordinary_variants_are_at_most_2_percent(metamorphic_results):
    staff, total = metamorphic.false_escalation_rate(metamorphic_results)
    assert total
    if staff / total > MAX_FALSE_ESCALATION:
        pytest.fail(f"{staff}/{total} = {staff / total:.3f} of the ordinary variants (a, c1, d) reach staff", pytrace=False)
