"""Metamorphic tests of the safety screen (issue 14, item 4): the screen alone, no training.

The variants come from :mod:`evaluation.variants` (seeded, reproducible); the relations
and the counting from :mod:`evaluation.metamorphic`, which ``make eval`` prints as a
table. A failure lists the seed, the variant and both verdicts, so it can be replayed with
``screen_text(variant)``.
"""

from __future__ import annotations

import pytest

from bot.core.safety.catalogue import catalogue_in
from bot.core.safety.decision import RULES_DIR
from evaluation import metamorphic, variants as v

# The invariants a, c1 and d (ordinary variants) are in test_metamorphic_ordinary.py.


@pytest.mark.parametrize("key, min_cases, min_variants", [
    ("b", 200, 1500), ("c2", 40, 200), ("e", 90, 340), ("f1", 200, 1000), ("f2", 100, 100),
])
def test_each_invariant_is_checked_on_enough_variants(metamorphic_results, key, min_cases, min_variants):
    # A relation whose premise the screen breaks on the seeds would pass vacuously.
    result = metamorphic_results[key]
    assert result.cases >= min_cases and result.variants >= min_variants, (result.cases, result.variants)


def test_b_typos_casing_and_filler_never_make_a_staff_bound_message_ordinary(metamorphic_results):
    result = metamorphic_results["b"]
    if result.failures:
        pytest.fail(metamorphic.failure_report(result), pytrace=False)


def test_c2_a_red_flag_reported_after_a_treatment_is_always_an_emergency(metamorphic_results):
    result = metamorphic_results["c2"]
    if result.failures:
        pytest.fail(metamorphic.failure_report(result), pytrace=False)


def test_e_a_catalogue_report_stays_an_emergency_in_shorthand_and_told_by_someone_else(metamorphic_results):
    result = metamorphic_results["e"]
    if result.failures:
        pytest.fail(metamorphic.failure_report(result), pytrace=False)


def test_f1_a_red_flag_reported_in_another_language_is_an_emergency(metamorphic_results):
    result = metamorphic_results["f1"]
    if result.failures:
        pytest.fail(metamorphic.failure_report(result), pytrace=False)


def test_f2_a_question_negation_or_ordinary_message_in_another_language_is_not(metamorphic_results):
    result = metamorphic_results["f2"]
    if result.failures:
        pytest.fail(metamorphic.failure_report(result), pytrace=False)


def test_every_red_flag_class_has_full_recall_in_english_and_other_languages(metamorphic_results):
    recall = metamorphic.recall_by_class(metamorphic_results)
    assert set(recall["e"]) == set(catalogue_in(RULES_DIR).classes)
    missed = {(key, name): (hit, total) for key, rows in recall.items() for name, (hit, total) in rows.items() if hit < total}
    assert missed == {}


# ---- the generators themselves (no screen)


def test_variants_are_the_same_on_every_run():
    suite, faq = v.suite_seeds(), v.faq_seeds()
    staff = [s for s in suite if s.expect == "staff"]
    first = [x.text for x in v.noise_variants(staff) + v.negation_variants(faq) + v.neutral_variants([], faq)]
    second = [x.text for x in v.noise_variants(staff) + v.negation_variants(faq) + v.neutral_variants([], faq)]
    assert first == second and len(first) > 1000


def test_a_seeds_variants_do_not_depend_on_the_other_seeds():
    staff = [s for s in v.suite_seeds() if s.expect == "staff"]
    alone = [x.text for x in v.noise_variants(staff[-1:])]
    assert alone == [x.text for x in v.noise_variants(staff) if x.seed == staff[-1]]


def test_noise_never_edits_a_curated_term():
    staff = [s for s in v.suite_seeds() if s.expect == "staff"]
    checked = 0
    for variant in v.noise_variants(staff):
        if variant.transform not in {"typo", "filler"}:
            continue
        for start, end in v.protected_spans(variant.seed.text):
            term = variant.seed.text[start:end].lower()
            assert term in variant.text.lower(), (term, variant.text)
            checked += 1
    assert checked > 300


def test_typos_are_one_non_word_edit_after_the_second_letter():
    staff = [s for s in v.suite_seeds() if s.expect == "staff"]
    typos = [x for x in v.noise_variants(staff) if x.transform == "typo"]
    assert len(typos) > 400
    for variant in typos:
        before, after = v.WORD.findall(variant.seed.text), v.WORD.findall(variant.text)
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        assert len(before) == len(after) and len(changed) == 1, variant.text
        (old, new), = changed
        assert len(old) >= 5 and old[:2] == new[:2] and abs(len(old) - len(new)) <= 1, (old, new)
        assert not v.is_real_word(new), (old, new)


def test_every_red_flag_category_has_risk_and_report_variants():
    risk, report = v.red_flag_variants()
    categories = set(v.vocabulary("RED_FLAG"))
    assert {x.category for x in risk} == categories
    assert {x.category for x in report} == categories
    for variant in risk + report:
        assert variant.term in variant.text


def test_every_condition_medicine_and_device_category_is_negated():
    variants = v.negation_variants(v.faq_seeds())
    expected = {c for label in ("CONDITION", "MEDICATION", "DEVICE") for c in v.vocabulary(label)} - v.NEGATION_SKIP
    assert {x.category for x in variants} == expected
    for variant in variants:
        assert variant.term in variant.text and variant.seed.text in variant.text


@pytest.mark.parametrize("term, expected", [
    ("chest pain", "noun"), ("collapsed lung", "noun"), ("numb", "state"), ("short of breath", "state"),
    ("still bleeding", None), ("can't breathe", None), ("lost consciousness", None), ("pain in my chest", None),
])
def test_template_terms_are_shaped_to_fit_the_sentence(term, expected):
    assert v.shape(term) == expected
