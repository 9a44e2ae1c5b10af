"""An FAQ answer to a message about a subject the domain never mentions becomes "did you mean ...?"."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.assistant.nlp import pipeline
from bot.assistant.nlp.unfamiliar_subject import UnfamiliarSubjectCheck, Vocabulary, unfamiliar_subject

# A small in-domain training set, and one unrelated example whose words must not count.
IN_DOMAIN = [
    ("how much does a session cost", "faq"),
    ("what is the price per session", "faq"),
    ("is it covered by my health insurance", "faq"),
    ("is it safe", "faq"),
    ("does it work for back pain", "faq"),
    ("what should I wear on the day", "faq"),
    ("how long does the relief last", "faq"),
    ("hello there", "greet"),
    ("can I book for Sunday", "book_appointment"),
]
UNRELATED = [("what is the price of bitcoin today", "out_of_scope")]


@pytest.fixture(scope="module")
def nlp():
    return pipeline.build(pipeline.load_patterns())


@pytest.fixture(scope="module")
def vocabulary(nlp):
    words = set()
    for text, _ in IN_DOMAIN:
        for token in nlp(text):
            words.update({token.lower_, token.lemma_.lower()})
    return Vocabulary(words)


@pytest.mark.parametrize(
    "word, known",
    [
        ("session", True),
        ("sessions", True),  # inflection
        ("insurence", True),  # one letter swapped
        ("insurrance", True),  # one letter added
        ("bitcoin", False),
        ("barbecue", False),
        ("pric", False),  # too short to be read as a slip
    ],
)
def test_vocabulary_knows_its_words_their_inflections_and_slips(vocabulary, word, known):
    assert vocabulary.knows(word, word) is known


@pytest.mark.parametrize(
    "text, unknown",
    [
        # A subject of its own, nothing about needling: held back.
        ("what's the price of bitcoin", ["bitcoin"]),
        ("will it be dry enough in Cork on Sunday for a barbecue", ["dry", "cork", "barbecue"]),
        ("is it safe to travel to Egypt right now", ["travel", "egypt", "right"]),
        # A knitting needle is not needling; needling named beside it is.
        ("knitting question, which needle for chunky wool", ["knitting", "question", "needle", "chunky", "wool"]),
        ("i knit a lot, could dry needling help my wrists", []),
        # "post" on its own is the post office, not "post-needling".
        ("how much is post to Canada", ["post", "canada"]),
        # Tied to needling by a subject word, a health term or an aspect of "it": answered.
        ("can I have a barbecue after", []),
        ("is dry needling good for tennis elbow", []),
        ("is it covered under the VHI or Laya", []),
        ("should I come in my tracksuit on the day of my appointment", []),
        ("does it hurt", []),
        # Every word known: not this check's business.
        ("how much does it cost", []),
        ("tho is it safe", []),
    ],
)
def test_unfamiliar_subject(nlp, vocabulary, text, unknown):
    assert unfamiliar_subject(text, nlp(text), vocabulary) == unknown


def message(nlp, text, intent="faq", safety=None):
    msg = Message(data={TEXT: text})
    msg.set(SPACY_DOCS[TEXT], nlp(text))
    ranking = [{"name": intent, "confidence": 0.8}, {"name": "out_of_scope", "confidence": 0.2}]
    msg.set(INTENT, ranking[0])
    msg.set(INTENT_RANKING_KEY, ranking)
    if safety is not None:
        msg.set("safety", safety)
    return msg


@pytest.fixture()
def trained(nlp, tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("unfamiliar")
    context = ExecutionContext(GraphSchema({}), "test")
    config = UnfamiliarSubjectCheck.get_default_config()
    component = UnfamiliarSubjectCheck.create(config, storage, resource, context)
    examples = []
    for text, intent in IN_DOMAIN + UNRELATED:
        example = Message(data={TEXT: text, INTENT: intent})
        example.set(SPACY_DOCS[TEXT], nlp(text))
        examples.append(example)
    component.train(TrainingData(training_examples=examples))
    return UnfamiliarSubjectCheck.load(config, storage, resource, context)


def test_faq_answer_to_an_unfamiliar_subject_becomes_the_fallback_with_the_models_ranking(nlp, trained):
    msg = message(nlp, "what's the price of bitcoin")
    trained.process([msg])
    assert msg.get(INTENT) == {"name": "nlu_fallback", "confidence": 1.0}
    # "did you mean ...?" offers the model's own candidates.
    assert [r["name"] for r in msg.get(INTENT_RANKING_KEY)] == ["nlu_fallback", "faq", "out_of_scope"]
    assert msg.get("unfamiliar_subject")["unknown_words"] == ["bitcoin"]
    assert msg.get("unfamiliar_subject")["model_intent"]["name"] == "faq"


@pytest.mark.parametrize(
    "text, held_back",
    [
        ("what are the opening hours of the Louvre", True),
        ("is the pharmacy on the high street open on Sunday", True),
        ("are you open on Sunday", False),  # the clinic itself
        ("is there parking on the high street", False),
        ("where can I park near the Louvre", True),  # the verb "park" is not the clinic's parking
    ],
)
def test_clinic_answers_need_the_clinic(nlp, trained, text, held_back):
    msg = message(nlp, text, intent="clinic_info")
    trained.process([msg])
    assert (msg.get(INTENT)["name"] == "nlu_fallback") is held_back


def test_unrelated_training_examples_do_not_join_the_vocabulary(nlp, trained):
    # "today" appears only in the out_of_scope example.
    msg = message(nlp, "what's the price today")
    trained.process([msg])
    assert msg.get(INTENT)["name"] == "nlu_fallback"
    assert msg.get("unfamiliar_subject")["unknown_words"] == ["today"]


@pytest.mark.parametrize(
    "text, intent, safety",
    [
        ("how much does a session cost", "faq", None),  # every word known
        ("what's the price of bitcoin", "out_of_scope", None),  # not an FAQ answer
        ("what's the price of bitcoin", "faq", {"reason": "human_request"}),  # staff-bound stays so
        ("/greet", "faq", None),  # a button payload
    ],
)
def test_other_messages_are_left_alone(nlp, trained, text, intent, safety):
    msg = message(nlp, text, intent, safety)
    trained.process([msg])
    assert msg.get(INTENT)["name"] == intent


def test_without_a_trained_vocabulary_the_check_is_off(nlp, tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    component = UnfamiliarSubjectCheck.load(
        UnfamiliarSubjectCheck.get_default_config(), storage, Resource("missing"), context
    )
    msg = message(nlp, "what's the price of bitcoin")
    component.process([msg])
    assert msg.get(INTENT)["name"] == "faq"
