"""LinearIntentClassifier: one model over all labels, Rasa-shaped output, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.assistant.nlp.linear_classifier import LinearIntentClassifier

VOCAB = ["hurt", "pain", "sting", "cost", "price", "insurance", "hello", "hi", "weather", "rain"]


def featurize(text: str) -> Message:
    """A message with a bag-of-words sparse block and a small dense block, like Rasa's featurizers."""
    message = Message(data={TEXT: text})
    counts = np.array([[text.split().count(word) for word in VOCAB]], dtype=float)
    message.add_features(Features(scipy.sparse.coo_matrix(counts), FEATURE_TYPE_SENTENCE, TEXT, "counts"))
    dense = np.array([[len(text) / 40.0, 1.0]])
    message.add_features(Features(dense, FEATURE_TYPE_SENTENCE, TEXT, "embedding"))
    return message


def example(text: str, intent: str) -> Message:
    message = featurize(text)
    base, _, key = intent.partition("/")
    message.set(INTENT, base)
    if key:
        message.set(INTENT_RESPONSE_KEY, intent)
    return message


TRAINING = [
    *(example(t, "faq/does_it_hurt") for t in ["does it hurt", "pain during it", "will it sting", "how much pain", "hurt a lot"]),
    *(example(t, "faq/cost_insurance") for t in ["what is the cost", "price please", "insurance cover", "cost and price", "does insurance pay"]),
    *(example(t, "greet") for t in ["hello", "hi", "hi there", "hello hello", "hi hi"]),
    *(example(t, "out_of_scope") for t in ["weather today", "will it rain", "rain tomorrow", "the weather", "rain or sun"]),
]


@pytest.fixture()
def storage(tmp_path):
    return LocalModelStorage(tmp_path)


def trained(storage) -> tuple[LinearIntentClassifier, Resource]:
    resource = Resource("linear")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**LinearIntentClassifier.get_default_config()}
    component = LinearIntentClassifier.create(config, storage, resource, context)
    data = TrainingData(
        training_examples=list(TRAINING),
        responses={"utter_faq/does_it_hurt": [{"text": "It can sting."}], "utter_faq/cost_insurance": [{"text": "Prices vary."}]},
    )
    component.train(data)
    return LinearIntentClassifier.load(config, storage, resource, context), resource


def test_predicts_intent_and_faq_topic_in_rasa_shape(storage):
    classifier, _ = trained(storage)
    message = featurize("does it hurt much")
    classifier.process([message])
    intent = message.get(INTENT)
    assert intent["name"] == "faq"
    ranking = message.get("intent_ranking")
    assert [r["name"] for r in ranking][0] == "faq" and len({r["name"] for r in ranking}) == len(ranking)
    assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6  # topics summed into "faq"
    selector = message.get("response_selector")
    assert selector["all_retrieval_intents"] == ["faq"]
    response = selector["faq"]["response"]
    assert response["intent_response_key"] == "faq/does_it_hurt"
    assert response["utter_action"] == "utter_faq/does_it_hurt"
    assert response["responses"] == [{"text": "It can sting."}]
    topics = selector["faq"]["ranking"]
    assert abs(sum(t["confidence"] for t in topics) - 1.0) < 1e-6


def test_other_intents_and_the_faq_selector_both_set(storage):
    classifier, _ = trained(storage)
    message = featurize("hello")
    classifier.process([message])
    assert message.get(INTENT)["name"] == "greet"
    assert message.get("response_selector")["faq"]["response"]["intent_response_key"].startswith("faq/")


def test_missing_feature_block_is_treated_as_zeros(storage):
    classifier, _ = trained(storage)
    message = Message(data={TEXT: "rain"})
    counts = np.array([[1.0 if w == "rain" else 0.0 for w in VOCAB]])
    message.add_features(Features(scipy.sparse.coo_matrix(counts), FEATURE_TYPE_SENTENCE, TEXT, "counts"))
    classifier.process([message])
    assert message.get(INTENT)["name"] == "out_of_scope"


def test_untrained_model_leaves_messages_alone(storage):
    context = ExecutionContext(GraphSchema({}), "test")
    classifier = LinearIntentClassifier.load(LinearIntentClassifier.get_default_config(), storage, Resource("none"), context)
    message = featurize("does it hurt")
    classifier.process([message])
    assert message.get(INTENT) is None


def test_invalid_config_is_refused(storage):
    with pytest.raises(Exception):
        LinearIntentClassifier({**LinearIntentClassifier.get_default_config(), "C": 0}, storage, Resource("x"))


def test_the_saved_model_is_plain_arrays_and_json_and_matches_scikit_learn(storage, tmp_path):
    classifier, resource = trained(storage)
    with storage.read_from(resource) as directory:
        names = sorted(path.name for path in directory.iterdir())
        with np.load(directory / "linear_intent_classifier.npz", allow_pickle=False) as arrays:
            assert all(arrays[name].dtype != object for name in arrays.files)
    assert names == ["linear_intent_classifier.json", "linear_intent_classifier.npz"]

    # The hand-written inference equals scikit-learn's on the same features.
    from sklearn.linear_model import LogisticRegression

    weights = classifier._weights
    examples = list(TRAINING)
    features = weights.features(classifier._blocks(examples, weights.layout), 2.0)
    reference = LogisticRegression(C=30.0, max_iter=5000).fit(features, [classifier._label(m) for m in examples])
    assert list(reference.classes_) == weights.labels
    assert np.allclose(weights.probabilities(features), reference.predict_proba(features), atol=1e-9)


def test_a_tampered_archive_with_pickled_objects_is_not_loaded(storage):
    _, resource = trained(storage)
    with storage.read_from(resource) as directory:
        path = directory / "linear_intent_classifier.npz"
        with np.load(path, allow_pickle=False) as arrays:
            content = {name: arrays[name] for name in arrays.files}
        content["coef"] = np.array([object()], dtype=object)  # what a pickle payload would need
        np.savez(path, **content)
    context = ExecutionContext(GraphSchema({}), "test")
    classifier = LinearIntentClassifier.load(LinearIntentClassifier.get_default_config(), storage, resource, context)
    message = featurize("does it hurt")
    classifier.process([message])
    assert message.get(INTENT) is None


def test_two_labels_give_the_same_probabilities_as_scikit_learns_sigmoid(storage):
    from sklearn.linear_model import LogisticRegression

    resource = Resource("binary")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**LinearIntentClassifier.get_default_config()}
    component = LinearIntentClassifier.create(config, storage, resource, context)
    two = [m for m in TRAINING if m.get(INTENT) in {"greet", "out_of_scope"}]
    component.train(TrainingData(training_examples=two))
    weights = component._weights
    features = weights.features(component._blocks(two, weights.layout), 2.0)
    reference = LogisticRegression(C=30.0, max_iter=5000).fit(features, [m.get(INTENT) for m in two])
    assert np.allclose(weights.probabilities(features), reference.predict_proba(features), atol=1e-9)
