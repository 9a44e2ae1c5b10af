"""The project's spaCy pipeline finds the curated entities."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
import spacy
import yaml

from bot.assistant.nlp import pipeline


@pytest.fixture(scope="module")
def nlp():
    return pipeline.build(pipeline.load_patterns())


def ents(nlp, text: str) -> set[tuple[str, str]]:
    # Lower-cased as Rasa's SpacyNLP (case_sensitive: false) and the safety screen do.
    return {(ent.label_, ent.ent_id_) for ent in nlp(text.lower()).ents}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I'm on Xarelto", ("MEDICATION", "anticoagulant")),
        ("i take warfrin every day", ("MEDICATION", "anticoagulant")),
        ("my dad takes plavix", ("MEDICATION", "antiplatelet")),
        ("I have a pacemaker", ("DEVICE", "pacemaker")),
        ("I'm pregnant", ("CONDITION", "pregnancy")),
        ("had a hip replacement last year", ("CONDITION", "joint_replacement")),
        ("I get seizures", ("CONDITION", "epilepsy")),
        ("since the needling I can't catch my breath", ("RED_FLAG", "breathing")),
        ("I have chest pain", ("RED_FLAG", "chest_pain")),
        ("I fainted after my session", ("RED_FLAG", "fainting")),
        ("my shoulder is really sore", ("SYMPTOM", "soreness")),
        ("my lower back and neck", ("BODY_REGION", "neck")),
    ],
)
def test_pipeline_finds_curated_entity(nlp, text, expected):
    assert expected in ents(nlp, text)


@pytest.mark.parametrize("text", ["does it hurt?", "how long is a session", "what should I wear", "is it like acupuncture"])
def test_ordinary_questions_have_no_health_entities(nlp, text):
    labels = {label for label, _ in ents(nlp, text)}
    assert not labels & {"CONDITION", "MEDICATION", "DEVICE", "RED_FLAG"}


def test_lookup_lemmatizer_is_active(nlp):
    assert [t.lemma_ for t in nlp("needles bleeding")] == ["needle", "bleed"]


@pytest.mark.parametrize(
    "text, expected",
    [
        # Inflections no pattern lists: the lemma finds them.
        ("she breastfeeds her son", ("CONDITION", "breastfeeding")),
        ("my calves are tight", ("BODY_REGION", "calf")),
        ("she passes out at the dentist", ("RED_FLAG", "fainting")),
        ("both my pacemakers", ("DEVICE", "pacemaker")),
        ("the pains are worse", ("SYMPTOM", "worse_pain")),
    ],
)
def test_phrase_patterns_match_inflections(nlp, text, expected):
    assert expected in ents(nlp, text)


@pytest.mark.parametrize(
    "text, label",
    [
        # An exact pattern or a corrected lemma keeps another word's meaning out.
        ("a faint bruise", "RED_FLAG"),  # "fainted" is exact
        ("I just chill at home", "RED_FLAG"),  # "chills" is exact
        ("is something wrong with me", "SYMPTOM"),  # "worse" is not looked up as "wrong"
        ("a number of people", "RED_FLAG"),  # "numb" is not the lemma of "number"
        ("ten minutes", "OTHER_TREATMENT"),  # "tens" is not "ten"
        ("a cup of tea after", "OTHER_TREATMENT"),  # "cupping" is exact
        ("my car tire", "SYMPTOM"),  # "tired" is exact
        ("a minor bruise", "CONDITION"),  # "minors" is exact (a bruise is a symptom)
    ],
)
def test_exact_patterns_and_corrections_keep_meanings_apart(nlp, text, label):
    assert label not in {found for found, _ in ents(nlp, text)}


def _phrase_lemmas(nlp) -> dict[tuple[str, ...], list[dict]]:
    by_lemmas: dict[tuple[str, ...], list[dict]] = defaultdict(list)
    for item in pipeline.load_patterns():
        if isinstance(item["pattern"], str):
            by_lemmas[tuple(t.lemma_ for t in nlp(item["pattern"]))].append(item)
    return by_lemmas


def test_no_inflection_is_listed_by_hand(nlp):
    """Two lemma-matched phrases with one meaning and the same lemmas are one phrase listed twice."""
    repeated = [
        [item["pattern"] for item in items if not item.get("exact")]
        for items in _phrase_lemmas(nlp).values()
        if len({(i["label"], i["id"]) for i in items if not i.get("exact")}) < len([i for i in items if not i.get("exact")])
    ]
    assert repeated == []


def test_phrases_that_share_lemmas_but_not_a_meaning_are_exact(nlp):
    """Where the same lemmas mean two things, both phrases must match only as written."""
    clashes = [
        [(item["label"], item["id"], item["pattern"]) for item in items]
        for items in _phrase_lemmas(nlp).values()
        if len({(i["label"], i["id"]) for i in items}) > 1 and not all(i.get("exact") for i in items)
    ]
    assert clashes == []


def test_exact_pattern_without_a_reason_is_reported(tmp_path):
    line = {"label": "RED_FLAG", "pattern": "fainted", "id": "fainting", "exact": True}
    (tmp_path / "bad.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(pipeline.PatternError, match="says why"):
        pipeline.load_patterns(tmp_path)


def test_lemma_correction_without_a_reason_is_reported(tmp_path):
    (tmp_path / "lemmas.yml").write_text("corrections:\n  worse:\n    lemma: worse\n")
    with pytest.raises(pipeline.PatternError, match="why"):
        pipeline.load_lemma_corrections(tmp_path / "lemmas.yml")


def test_rasa_lower_cases_before_the_pipeline():
    """Lemmas are looked up on lower-case words: Rasa's SpacyNLP must not be case-sensitive."""
    config = yaml.safe_load((pipeline.REPO_ROOT / "config.yml").read_text())
    spacy_nlp = next(step for step in config["pipeline"] if step["name"] == "SpacyNLP")
    assert spacy_nlp.get("case_sensitive", False) is False


def test_malformed_pattern_line_is_reported(tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps({"label": "CONDITION", "pattern": "x"}) + "\n")
    with pytest.raises(pipeline.PatternError, match="missing"):
        pipeline.load_patterns(tmp_path)


def test_unknown_label_is_reported(tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps({"label": "DRUG", "pattern": "x", "id": "x"}) + "\n")
    with pytest.raises(pipeline.PatternError, match="unknown label"):
        pipeline.load_patterns(tmp_path)


def test_saved_pipeline_round_trips(nlp, tmp_path):
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert ents(loaded, "I'm on Xarelto") == ents(nlp, "I'm on Xarelto")
