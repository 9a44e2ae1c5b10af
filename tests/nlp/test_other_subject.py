"""FAQ-shaped questions about another treatment are told apart from questions about needling."""

import pytest

from bot.assistant.nlp import pipeline
from bot.assistant.nlp.other_subject import other_subject


@pytest.fixture(scope="module")
def nlp():
    return pipeline.build(pipeline.load_patterns())


def subject(nlp, text):
    # Lower-cased as Rasa's SpacyNLP does (case_sensitive: false) before the pipeline sees it.
    span = other_subject(nlp(text.lower()))
    return span.text.lower() if span is not None else None


@pytest.mark.parametrize(
    "text, expected",
    [
        # About another treatment on its own: no FAQ answer.
        ("what are the side effects of amitriptyline", "amitriptyline"),
        ("is a TENS machine any good for period pain", "tens machine"),
        ("how many osteopath visits does a stiff back usually take", "osteopath"),
        ("should i drink lots of water after a massage", "massage"),
        ("is paracetamol safe to take every day", "paracetamol"),
        ("is invisalign painful", "invisalign"),
        ("what goes on during an mri scan", "mri scan"),
        ("is it normal to feel dizzy after giving blood", "giving blood"),
        ("can i push my dentist appointment back a week", "dentist"),
        ("what do they do at a hearing test", "hearing test"),
        # Related to needling: the FAQ still answers.
        ("is dry needling better than a sports massage", None),
        ("can I have a massage after?", None),
        ("can i take ibuprofen for the soreness", None),
        ("the chiro didn't help, could needling?", None),
        ("can i keep going to pilates", None),
        ("yoga the same day, ok?", None),
        ("is IMS the same as cupping", None),
        ("can i wear my brace during?", None),
        # Nothing else named: not this check's business.
        ("does it hurt", None),
        ("how much is a session", None),
    ],
)
def test_other_subject(nlp, text, expected):
    assert subject(nlp, text) == expected


def test_microneedling_is_another_treatment_not_a_needling_reference(nlp):
    assert subject(nlp, "how long does microneedling take to heal") == "microneedling"


def test_safety_terms_keep_their_own_labels(nlp):
    # A longer curated health pattern wins over an other-treatment word inside it.
    labels = {ent.label_ for ent in nlp("I finished antibiotics yesterday and have a new tattoo").ents}
    assert "OTHER_TREATMENT" not in labels
