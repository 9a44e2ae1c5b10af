"""The MiniLM sentence featurizer: offline weights, normalised mean-pooled embeddings, on onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.assistant import runtime
from bot.assistant.nlp.minilm import DEFAULT_OUTPUT, ONNX_FILE
from bot.assistant.nlp.sentence_featurizer import SentenceEmbeddingFeaturizer, SentenceEncoder, load_encoder
from bot.core.settings import REPO_ROOT

pytestmark = pytest.mark.skipif(
    not (DEFAULT_OUTPUT / ONNX_FILE).exists(),
    reason="MiniLM encoder not exported yet (`make` builds build/minilm before training)",
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


def training_texts() -> list[str]:
    from rasa.shared.nlu.training_data.loading import load_data

    return sorted({m.get(TEXT) for m in load_data(str(REPO_ROOT / "data" / "nlu")).training_examples if m.get(TEXT)})


def test_onnx_embeddings_match_the_tensorflow_model_on_the_training_texts(encoder):
    """The exported graph is the TensorFlow model: the same vector for every training text (a
    fixed sample of one in ten here: all of them take minutes on two cores)."""
    from transformers import BertTokenizerFast

    from bot.assistant.nlp.minilm import embedding_function, tf_model

    texts = training_texts()[::10]
    assert len(texts) > 300
    tokenizer = BertTokenizerFast.from_pretrained(str(DEFAULT_OUTPUT))
    embed = embedding_function(tf_model(DEFAULT_OUTPUT))
    reference = []
    for start in range(0, len(texts), 64):
        batch = tokenizer(texts[start:start + 64], padding=True, truncation=True, max_length=128, return_tensors="np")
        reference.append(embed(batch["input_ids"].astype(np.int32), batch["attention_mask"].astype(np.int32)).numpy())
    cosine = (np.vstack(reference) * encoder.encode(texts)).sum(axis=1)
    assert cosine.min() >= 0.9999
    # The tokenizer the encoder uses (tokenizers, no transformers) gives the same word pieces.
    for text in texts[:100] + ["x " * 300]:
        assert tokenizer(text, truncation=True, max_length=128)["input_ids"] == encoder._tokenizer.encode(text).ids


def test_onnxruntime_uses_the_configured_thread_count(monkeypatch):
    monkeypatch.setenv(runtime.THREADS_VARIABLE, "2")
    assert SentenceEncoder(DEFAULT_OUTPUT, 128)._session.get_session_options().intra_op_num_threads == 2
    monkeypatch.delenv(runtime.THREADS_VARIABLE)
    assert SentenceEncoder(DEFAULT_OUTPUT, 128)._session.get_session_options().intra_op_num_threads == 1
