"""Rasa intent classifier and response selector in one: a linear model over sentence features.

Why not DIET and the ResponseSelector: with ~2,700 short training examples on a
2-core CPU, a regularised logistic regression over the same features (word and
character n-gram counts from Rasa's ``CountVectorsFeaturizer``, weighted by
TF-IDF, plus the MiniLM sentence embedding from
:mod:`bot.assistant.nlp.sentence_featurizer`) classified the held-out set better and
trains in seconds instead of minutes (measurements in docs/benchmarks.md).

One model is trained over *every* label, with retrieval intents split into
their response keys (``faq/does_it_hurt``, ``greet``, ...). Its output is
written in Rasa's usual shape, so rules, ``FallbackClassifier``, the safety
screen and ``ActionRetrieveResponse`` work unchanged:

* ``intent`` / ``intent_ranking``: probabilities summed per intent, so the
  confidence in ``faq`` is the total over its topics;
* ``response_selector.<retrieval intent>``: the topics ranked by probability
  within that intent, with the predicted ``utter_faq/...`` action.

scikit-learn fits the model; what is saved is plain numbers: the weights in a
NumPy ``.npz`` archive read with ``allow_pickle=False`` and the labels, layout and
responses in JSON (:class:`LinearWeights`). Loading a model archive therefore
never executes code from it, unlike pickle or joblib.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from typing import Any, Dict, List, Optional, Text

import json
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.nlu.constants import (
    FEATURE_TYPE_SENTENCE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.exceptions import InvalidConfigException
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "linear_intent_classifier.npz"
META_FILE = "linear_intent_classifier.json"
FORMAT_VERSION = 1


@dataclass
class LinearWeights:
    """What a fitted model is at prediction time: TF-IDF weights per sparse block and a softmax layer.

    ``layout`` lists the feature blocks in column order as (origin, width, dense).
    Sparse blocks are TF-IDF weighted as scikit-learn's ``TfidfTransformer(sublinear_tf=True)``
    does (1 + log tf, times idf, rows scaled to unit length); dense blocks are scaled by
    ``dense_weight``. Probabilities are the multinomial logistic regression's softmax.
    """

    layout: List[tuple[str, int, bool]]
    idf: Dict[str, np.ndarray]
    labels: List[str]
    coef: np.ndarray
    intercept: np.ndarray
    responses: Dict[str, Any]

    def features(self, blocks: List[scipy.sparse.csr_matrix], dense_weight: float) -> scipy.sparse.csr_matrix:
        """The model's input row(s) from the raw blocks, in ``layout`` order."""
        columns = []
        for (origin, _, dense), matrix in zip(self.layout, blocks):
            if dense:
                columns.append(matrix * dense_weight)
                continue
            weighted = matrix.astype(np.float64).tocsr(copy=True)
            np.log(weighted.data, weighted.data)
            weighted.data += 1.0
            weighted = weighted @ scipy.sparse.diags(self.idf[origin])
            norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
            norms[norms == 0.0] = 1.0
            columns.append(scipy.sparse.diags(1.0 / norms) @ weighted)
        return scipy.sparse.hstack(columns).tocsr()

    def probabilities(self, features: scipy.sparse.csr_matrix) -> np.ndarray:
        """Softmax of the linear scores, one row per message."""
        scores = np.asarray(features @ self.coef.T) + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, directory: Path) -> None:
        """Arrays to ``.npz`` (no pickled objects), everything else to JSON."""
        arrays = {"coef": self.coef, "intercept": self.intercept}
        arrays.update({f"idf_{index}": self.idf[origin] for index, (origin, _, dense) in enumerate(self.layout) if not dense})
        np.savez(directory / WEIGHTS_FILE, **arrays)
        meta = {"format": FORMAT_VERSION, "layout": self.layout, "labels": self.labels, "responses": self.responses}
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "LinearWeights":
        """Read a saved model; raises ``ValueError`` on anything malformed."""
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown LinearIntentClassifier format {meta.get('format')!r}")
        layout = [(str(origin), int(width), bool(dense)) for origin, width, dense in meta["layout"]]
        with np.load(directory / WEIGHTS_FILE, allow_pickle=False) as arrays:
            coef, intercept = arrays["coef"], arrays["intercept"]
            idf = {origin: arrays[f"idf_{index}"] for index, (origin, _, dense) in enumerate(layout) if not dense}
        labels = [str(label) for label in meta["labels"]]
        if coef.shape != (len(labels), sum(width for _, width, _ in layout)) or intercept.shape != (len(labels),):
            raise ValueError("LinearIntentClassifier weights do not match its labels and layout")
        return cls(layout, idf, labels, coef, intercept, meta["responses"])


def _base(label: str) -> str:
    return label.split("/", 1)[0]


def _sentence_blocks(message: Message) -> Dict[str, Any]:
    """The message's sentence-level ``text`` features, by the featurizer that made them."""
    blocks: Dict[str, Any] = {}
    for feature in message.features:
        if feature.attribute == TEXT and feature.type == FEATURE_TYPE_SENTENCE:
            origin = feature.origin if isinstance(feature.origin, str) else "+".join(feature.origin)
            blocks[origin] = feature.features
    return blocks


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    """Logistic regression over all sentence features; fills intent and response-selector output."""

    @classmethod
    def required_components(cls) -> List[type]:
        """Needs at least one featurizer before it."""
        return [Featurizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Defaults chosen by measurement (docs/benchmarks.md)."""
        return {
            # Inverse regularisation strength of the logistic regression.
            "C": 30.0,
            # Weight of dense (embedding) blocks against the unit-length sparse blocks.
            "dense_weight": 2.0,
            # Retrieval intents whose response keys become labels of their own.
            "retrieval_intents": ["faq"],
            "ranking_length": 10,
            "max_iter": 5000,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        weights: Optional[LinearWeights] = None,
    ) -> None:
        """Holds the config and, once trained or loaded, the fitted model."""
        if float(config["C"]) <= 0 or float(config["dense_weight"]) < 0:
            raise InvalidConfigException("C must be positive and dense_weight non-negative.")
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._weights = weights

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LinearIntentClassifier":
        """A new, untrained component."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "LinearIntentClassifier":
        """Loads the fitted model from the model archive (untrained if there is none)."""
        try:
            with model_storage.read_from(resource) as directory:
                weights = LinearWeights.load(directory)
        except (ValueError, KeyError, TypeError, FileNotFoundError):
            logger.warning("no usable trained LinearIntentClassifier in the model; it will predict nothing")
            weights = None
        return cls(config, model_storage, resource, weights)

    # ---- features -------------------------------------------------------------------

    @staticmethod
    def _block(messages: List[Message], origin: str, width: int) -> scipy.sparse.csr_matrix:
        """One featurizer's block for every message, one row each (zeros where it is missing)."""
        rows = [
            scipy.sparse.csr_matrix(_sentence_blocks(message).get(origin, scipy.sparse.csr_matrix((1, width))))
            for message in messages
        ]
        return scipy.sparse.vstack(rows).tocsr()

    def _blocks(self, messages: List[Message], layout: List[tuple[str, int, bool]]) -> List[scipy.sparse.csr_matrix]:
        """Each featurizer's block for the messages, in ``layout`` order."""
        return [self._block(messages, origin, width) for origin, width, _ in layout]

    def _label(self, message: Message) -> Optional[str]:
        intent = message.get(INTENT)
        if not intent:
            return None
        if intent in self._config["retrieval_intents"]:
            return message.get(INTENT_RESPONSE_KEY) or intent
        return intent

    # ---- training -------------------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        """Fits TF-IDF weights per sparse block and the logistic regression."""
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and self._label(m)]
        labels = [self._label(m) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("LinearIntentClassifier needs at least two labels; not training")
            return self._resource
        layout: List[tuple[str, int, bool]] = []
        for origin, block in sorted(_sentence_blocks(examples[0]).items()):
            layout.append((origin, block.shape[-1], not scipy.sparse.issparse(block)))
        blocks = self._blocks(examples, layout)
        idf = {
            origin: TfidfTransformer(sublinear_tf=True).fit(block).idf_
            for (origin, _, dense), block in zip(layout, blocks)
            if not dense
        }
        # Fit on exactly the features prediction will compute, so the two cannot drift apart.
        unfitted = LinearWeights(layout, idf, [], np.zeros((0, 0)), np.zeros(0), {})
        features = unfitted.features(blocks, float(self._config["dense_weight"]))
        model = LogisticRegression(C=float(self._config["C"]), max_iter=int(self._config["max_iter"]))
        model.fit(features, labels)
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1:
            # Two labels: scikit-learn keeps one row (sigmoid); the softmax of [0, z] is the same.
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        self._weights = LinearWeights(
            layout=layout,
            idf=idf,
            labels=[str(label) for label in model.classes_],
            coef=coef,
            intercept=intercept,
            responses={
                key: value for key, value in training_data.responses.items()
                if _base(key.replace("utter_", "", 1)) in self._config["retrieval_intents"]
            },
        )
        with self._model_storage.write_to(self._resource) as directory:
            self._weights.save(directory)
        logger.info("trained LinearIntentClassifier on %d examples, %d labels", len(examples), len(set(labels)))
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to the training data."""
        return training_data

    # ---- inference ------------------------------------------------------------------

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets intent, intent ranking and response-selector output on each message."""
        if not self._weights:
            return messages
        weights = self._weights
        labels = weights.labels
        dense_weight = float(self._config["dense_weight"])
        for message in messages:
            if not isinstance(message.get(TEXT), str):
                continue
            features = weights.features(self._blocks([message], weights.layout), dense_weight)
            probabilities = weights.probabilities(features)[0]
            self._set_intent(message, labels, probabilities)
            for retrieval_intent in self._config["retrieval_intents"]:
                self._set_selector(message, retrieval_intent, labels, probabilities)
        return messages

    def _set_intent(self, message: Message, labels: List[str], probabilities: np.ndarray) -> None:
        totals: Dict[str, float] = defaultdict(float)
        for label, probability in zip(labels, probabilities):
            totals[_base(label)] += float(probability)
        ranking = [
            {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
            for name, confidence in sorted(totals.items(), key=lambda item: -item[1])
        ][: int(self._config["ranking_length"])]
        message.set(INTENT, ranking[0], add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)

    def _set_selector(
        self, message: Message, retrieval_intent: str, labels: List[str], probabilities: np.ndarray
    ) -> None:
        members = [(label, float(p)) for label, p in zip(labels, probabilities) if _base(label) == retrieval_intent]
        if not members:
            return
        total = sum(p for _, p in members) or 1.0
        members.sort(key=lambda item: -item[1])
        ranking = [
            {"id": zlib.crc32(label.encode("utf-8")), PREDICTED_CONFIDENCE_KEY: p / total, INTENT_RESPONSE_KEY: label}
            for label, p in members[: int(self._config["ranking_length"])]
        ]
        top = members[0][0]
        utter_action = f"utter_{top}"
        selector = message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {}
        selector[RESPONSE_SELECTOR_RETRIEVAL_INTENTS] = list(self._config["retrieval_intents"])
        selector[retrieval_intent] = {
            RESPONSE_SELECTOR_PREDICTION_KEY: {
                RESPONSE_SELECTOR_RESPONSES_KEY: self._weights.responses.get(utter_action, []),
                PREDICTED_CONFIDENCE_KEY: ranking[0][PREDICTED_CONFIDENCE_KEY],
                INTENT_RESPONSE_KEY: top,
                RESPONSE_SELECTOR_UTTER_ACTION_KEY: utter_action,
            },
            RESPONSE_SELECTOR_RANKING_KEY: ranking,
        }
        message.set(RESPONSE_SELECTOR_PROPERTY_NAME, selector, add_to_output=True)
