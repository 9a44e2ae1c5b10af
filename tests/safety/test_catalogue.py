"""The red-flag catalogue (data/safety/red_flags/), the semantic detector and the language net,
through the whole screen as the assistant runs it (lexical and semantic detectors on)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.assistant.nlp.sentence_featurizer import DEFAULT_MODEL_PATH, load_encoder
from bot.core.safety.catalogue import CatalogueError, catalogue_in, load_catalogue
from bot.core.safety.decision import RULES_DIR, TableError, default_table, parse_table
from bot.core.safety.routing import describe, route
from bot.core.safety.screen import Screen, pipeline
from bot.core.safety.verdict import Evidence, Verdict
from bot.core.settings import REPO_ROOT
from evaluation import variants as v

CATALOGUE = catalogue_in(RULES_DIR)
EXAMPLES = [(cls.id, text) for cls in CATALOGUE.classes.values() for text in cls.examples]
NOT_EMERGENCY = [(cls.id, text) for cls in CATALOGUE.classes.values() for text in cls.not_emergency]
VARIANTS = [x for x in v.catalogue_variants(CATALOGUE) if x.transform != "example"]


@pytest.fixture(scope="module")
def screen() -> Screen:
    """The screen with the semantic detector on the pipeline's MiniLM encoder, as in the Rasa process."""
    screen = Screen(pipeline())
    screen.attach_encoder(load_encoder(str(REPO_ROOT / DEFAULT_MODEL_PATH), 128).encode)
    return screen


def emergency_classes(verdict: Verdict) -> set[str]:
    """The catalogue classes of the findings that made the message an emergency."""
    classes = (CATALOGUE.class_of(e.category, e.label) for e in verdict.evidence if e.outcome == "emergency")
    return {c.id for c in classes if c is not None}


# ------------------------------------------------------------------ the catalogue as data


def test_every_class_is_sourced_and_has_examples_of_both_kinds():
    for cls in CATALOGUE.classes.values():
        assert cls.sources and all(s["url"].startswith("https://") for s in cls.sources), cls.id
        assert cls.examples and cls.phrasings and cls.not_emergency, cls.id
        assert cls.care in {"999", "111"} and cls.emergency in {"always", "after_treatment"}


def test_the_table_reads_each_class_severity_from_the_catalogue():
    urgent = next(row for row in default_table().rows if row.id == "red_flag_urgent")
    after = next(row for row in default_table().rows if row.id == "red_flag_after_treatment")
    assert {"RED_FLAG:stroke_sign", "RED_FLAG:anaphylaxis", "RED_FLAG:urinary_retention"} <= urgent.findings
    assert "RED_FLAG:fever" in after.findings and "RED_FLAG:fever" not in urgent.findings
    # A concept may be milder than its class: long-standing incontinence counts only after a treatment.
    assert "RED_FLAG:incontinence" in after.findings


def test_the_table_may_not_redefine_a_catalogue_group():
    data = yaml.safe_load((RULES_DIR / "decision_table.yml").read_text(encoding="utf-8"))
    data["groups"]["red_flag_always"] = ["RED_FLAG:fever"]
    with pytest.raises(TableError, match="red-flag catalogue"):
        parse_table(data, CATALOGUE.groups())


def _write_class(folder: Path, **changes) -> None:
    data = yaml.safe_load((RULES_DIR / "red_flags" / "headache.yml").read_text(encoding="utf-8"))
    data.update(changes)
    (folder / f"{data['id']}.yml").write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"emergency": "sometimes"}, "emergency must be one of"),
        ({"care": "112"}, "care must be one of"),
        ({"sources": []}, "sources"),
        ({"concepts": {"thunderclap_headache": {"exact": [{"phrase": "worst headache"}]}}}, "needs a phrase and a why"),
        ({"id": "migraine"}, "differs from the file name"),
    ],
)
def test_a_malformed_class_is_reported(tmp_path, changes, message):
    _write_class(tmp_path, **changes)
    if "id" in changes:
        (tmp_path / "migraine.yml").rename(tmp_path / "headache.yml")
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(tmp_path)


def test_a_concept_in_two_classes_is_reported(tmp_path):
    _write_class(tmp_path)
    _write_class(tmp_path, id="vision")
    with pytest.raises(CatalogueError, match="in two classes"):
        load_catalogue(tmp_path)


def test_a_first_person_phrase_also_matches_someone_else():
    patterns = {item["pattern"] for item in CATALOGUE.ruler_patterns() if isinstance(item["pattern"], str)}
    assert {"numb between my legs", "numb between his legs", "numb between her legs", "numb between their legs"} <= patterns


# ------------------------------------------------------------------ emergencies, per class


@pytest.mark.parametrize("red_flag_class, text", EXAMPLES)
def test_every_catalogue_example_is_an_emergency_of_its_class(screen, red_flag_class, text):
    verdict = screen(text)
    assert verdict.reason == "emergency"
    assert red_flag_class in emergency_classes(verdict)
    assert verdict.care == ("999" if verdict.red_flag_class is None else CATALOGUE.classes[verdict.red_flag_class].care)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda x: f"{x.category}:{x.transform}:{x.seed.text[:30]}")
def test_a_report_stays_an_emergency_in_shorthand_and_told_by_someone_else(screen, variant):
    verdict = screen(variant.text)
    assert verdict.reason == "emergency", variant.text
    if variant.transform.startswith("third_person"):
        assert verdict.third_party, variant.text


@pytest.mark.parametrize("red_flag_class, text", NOT_EMERGENCY)
def test_a_question_negation_or_history_is_never_an_emergency(screen, red_flag_class, text):
    assert screen(text).reason != "emergency"


@pytest.mark.parametrize(
    "text",
    [
        "when should I go to A&E after needling?",
        "at what point should someone call 999 after dry needling?",
        "what are the warning signs of a collapsed lung after needling",
    ],
)
def test_a_general_question_about_when_to_seek_help_is_not_an_emergency(screen, text):
    assert screen(text).reason != "emergency"


def test_asking_now_whether_to_go_to_a_and_e_is_still_an_emergency(screen):
    assert screen("should I go to A&E?").reason == "emergency"


def test_a_small_bleed_on_a_blood_thinner_is_an_adverse_event_not_the_contraindication_text(screen):
    verdict = screen("i'm on warfarin and the needle site is bleeding a little")
    assert verdict.reason == "adverse_event" and verdict.adverse_class == "minor_bleeding"
    assert screen("i'm not on any blood thinners, the needle site bled a little after the needling").reason != "adverse_event"


# ------------------------------------------------------------------ the semantic detector


@pytest.mark.parametrize(
    "text, red_flag_class",
    [
        ("my tongue feels huge and it's hard to talk", "anaphylaxis"),
        ("my bladder won't empty since they needled my back", "cauda_equina"),
        ("everything looks doubled", "stroke"),
    ],
)
def test_a_red_flag_in_words_no_list_holds_is_found_by_meaning(screen, text, red_flag_class):
    verdict = screen(text)
    assert verdict.reason == "emergency" and verdict.red_flag_class == red_flag_class
    assert any(e.detector == "semantic" and e.gives_reason for e in verdict.evidence)


@pytest.mark.parametrize(
    "text",
    ["i'm not struggling to get air at all", "my tongue doesn't feel huge or anything", "can needling make it hard to get air?"],
)
def test_context_rules_a_semantic_finding_out_as_it_does_a_listed_one(screen, text):
    verdict = screen(text)
    assert verdict.reason != "emergency"
    assert any(e.detector == "semantic" for e in verdict.evidence)


def test_the_lexical_detector_keeps_the_clauses_it_knows(screen):
    verdict = screen("i can't breathe")
    assert [e.detector for e in verdict.evidence if e.label == "RED_FLAG"] == ["lexical"]


# ------------------------------------------------------------------ other languages


def test_a_red_flag_in_another_language_is_an_emergency_of_its_class_for_someone_else(screen):
    verdict = screen("mijn man kan niet ademen na de behandeling")
    assert (verdict.reason, verdict.red_flag_class, verdict.language, verdict.third_party) == ("emergency", "breathing", "nl", True)


def test_an_ordinary_question_in_another_language_goes_out_of_scope(screen):
    verdict = screen("¿cuánto cuesta una sesión de punción seca?")
    assert verdict.language == "es" and verdict.reason is None
    assert route(verdict, {"name": "faq/cost_insurance", "confidence": 0.9}).intent == "out_of_scope"


def test_an_english_risk_question_with_a_word_shared_with_french_stays_english(screen):
    verdict = screen("is incontinence a possible side effect of needling?")
    assert verdict.language == "en" and verdict.reason != "emergency"


# ------------------------------------------------------------------ what the reply speaks to


def test_several_classes_give_the_999_class_first():
    evidence = [
        Evidence("RED_FLAG", "fever", "a fever", outcome="emergency", gives_reason=True),
        Evidence("RED_FLAG", "chest_pain", "chest pain", outcome="emergency", gives_reason=True),
    ]
    verdict = describe(Verdict(reason="emergency", evidence=evidence), "emergency", CATALOGUE)
    assert (verdict.red_flag_class, verdict.care) == ("chest_pain", "999")


def test_an_adverse_event_with_no_after_effect_found_is_unplaced():
    assert describe(Verdict(), "adverse_event", CATALOGUE).adverse_class == "unplaced"


def test_a_deferred_red_flag_the_model_made_an_emergency_keeps_its_class():
    evidence = [Evidence("RED_FLAG", "numbness", "numb", outcome="defer")]
    verdict = describe(Verdict(evidence=evidence), "emergency", CATALOGUE)
    assert (verdict.red_flag_class, verdict.care) == ("nerve_injury", "111")
