"""The project's spaCy pipeline finds the curated entities."""

from __future__ import annotations

import json

import pytest
import spacy

from bot.nlp import pipeline


@pytest.fixture(scope="module")
def nlp():
    return pipeline.build(pipeline.load_patterns())


def ents(nlp, text: str) -> set[tuple[str, str]]:
    return {(ent.label_, ent.ent_id_) for ent in nlp(text).ents}


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
