"""The MiniLM sentence featurizer: offline weights, normalised mean-pooled embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.assistant.nlp.minilm import DEFAULT_OUTPUT
from bot.assistant.nlp.sentence_featurizer import SentenceEmbeddingFeaturizer, load_encoder

pytestmark = pytest.mark.skipif(
    not (DEFAULT_OUTPUT / "tf_model.h5").exists(),
    reason="MiniLM weights not converted yet (`make` builds build/minilm before training)",
)


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(str(DEFAULT_OUTPUT), 128)


def test_embeddings_are_unit_vectors_in_input_order(encoder):
    texts = ["does dry needling hurt?", "hi", "how much does a session cost with insurance?"]
    together = encoder.encode(texts)
    assert together.shape == (3, encoder.dimension)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-4)
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(together, one_by_one, atol=1e-4)  # batching and padding change nothing


def test_paraphrases_are_closer_than_unrelated_questions(encoder):
    a, b, c = encoder.encode(["will the needles be painful", "does dry needling hurt", "what's the weather tomorrow"])
    assert a @ b > a @ c + 0.2


def test_component_adds_one_sentence_feature_per_message():
    featurizer = SentenceEmbeddingFeaturizer({**SentenceEmbeddingFeaturizer.get_default_config()}, "minilm")
    messages = [Message(data={TEXT: "is it like acupuncture"}), Message(data={TEXT: ""}), Message(data={"intent": "greet"})]
    featurizer.process(messages)
    _, sentence = messages[0].get_dense_features(TEXT)
    assert sentence.features.shape == (1, 384)
    assert all(f.type == FEATURE_TYPE_SENTENCE for f in messages[0].features)
    assert messages[1].get_dense_features(TEXT)[1] is not None  # empty text still gets a vector
    assert messages[2].features == []  # nothing to embed
