"""Rasa NLU component: a thin adapter around the safety screen (:mod:`bot.core.safety`).

It sits after the intent classifiers and before the ``FallbackClassifier``. For each
message it runs :func:`bot.core.safety.screen.screen_text` on the patient's text, asks
:func:`bot.core.safety.routing.route` what to do given the model's guess, applies that to the
intent (full confidence for a staff route, so neither the fallback nor a competing intent can
take the message elsewhere), and stores the verdict under ``safety`` in the parse data, where
the actions read it (``safety.reason``) instead of screening again. The model's own guess
stays in ``safety.model_intent`` / ``safety.model_ranking`` for audit.

The screen's rule files (``data/safety``) are read at run time: changing them needs no
retraining. Last, an FAQ answer is withheld from a question about another treatment ("does
cupping hurt?"): see :mod:`bot.assistant.nlp.other_subject`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.assistant.nlp.other_subject import other_subject
from bot.assistant.nlp.sentence_featurizer import DEFAULT_MODEL_PATH, load_encoder
from bot.core.safety.routing import describe, route
from bot.core.safety.screen import default_screen, screen_text, table
from bot.core.settings import REPO_ROOT

logger = logging.getLogger(__name__)

SAFETY_KEY = "safety"


def _sentence_embedding(message: Message) -> Optional[np.ndarray]:
    """The MiniLM sentence embedding the featurizer already computed for this message (reused
    by the semantic detector when the message is one clause), or ``None``."""
    for features in message.features:
        origin = features.origin if isinstance(features.origin, str) else " ".join(features.origin or ())
        if features.attribute == TEXT and features.type == FEATURE_TYPE_SENTENCE and "SentenceEmbedding" in origin:
            vector = np.asarray(features.features).reshape(-1)
            norm = float(np.linalg.norm(vector))
            return vector / norm if norm else None
    return None


def _decide(message: Message, intent_name: str, ranking: List[Dict[Text, Any]]) -> None:
    """Set the intent with full confidence; the others drop to zero so the fallback's
    ambiguity check cannot turn the decision into "did you mean ...?"."""
    decided = {INTENT_NAME_KEY: intent_name, "confidence": 1.0}
    others = [{**r, "confidence": 0.0} for r in ranking if r.get(INTENT_NAME_KEY) != intent_name]
    message.set(INTENT, decided, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [decided] + others, add_to_output=True)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class SafetyScreen(GraphComponent):
    """Route messages that must reach clinic staff, whatever the model guessed."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The rules live in ``data/safety``; the options only say which sentence encoder the
        semantic red-flag detector shares (the ``SentenceEmbeddingFeaturizer``'s, loaded once)."""
        return {"semantic": True, "model_path": DEFAULT_MODEL_PATH, "max_length": 128}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SafetyScreen":
        """Create the component and load the screen (its spaCy pipeline and rules) once, with the
        semantic red-flag detector on the pipeline's sentence encoder."""
        screen = default_screen()
        if config.get("semantic", True) and screen.semantic is None:
            path = Path(config.get("model_path") or DEFAULT_MODEL_PATH)
            encoder = load_encoder(str(path if path.is_absolute() else REPO_ROOT / path), int(config.get("max_length", 128)))
            screen.attach_encoder(encoder.encode)
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Screen each message and route it."""
        for message in messages:
            self._screen(message)
        return messages

    def _screen(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        if not isinstance(text, str) or text.startswith("/"):
            return  # a button payload: nothing the patient wrote to screen
        verdict = screen_text(text, _sentence_embedding(message))
        intent = message.get(INTENT) or {}
        ranking = message.get(INTENT_RANKING_KEY) or []
        routing = route(verdict, intent, ranking, staff_intent=table().intent)
        if routing.reason != verdict.reason:
            # The model's guess gave the reason (a red flag the screen deferred on, an adverse
            # event the screen found no after-effect for): the reply speaks to that reason.
            verdict = describe(verdict, routing.reason, default_screen().catalogue)
        data = verdict.as_dict()
        data.update(
            screen_reason=verdict.reason,
            reason=routing.reason,
            model_intent=intent,
            rerouted=routing.rerouted,
            demoted=routing.demoted,
        )
        if routing.decisive:
            data["model_ranking"] = ranking
            _decide(message, routing.intent, ranking)
            if routing.rerouted:
                # No matched terms here: they are the patient's health data.
                logger.info("safety screen routed %s -> %s (%s)", intent.get(INTENT_NAME_KEY), routing.intent, routing.reason)
        elif routing.demoted:
            message.set(INTENT, routing.ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, routing.ranking, add_to_output=True)
            logger.info("safety screen answered %s as %s", intent.get(INTENT_NAME_KEY), routing.intent)
        elif routing.unrelated_health_question:
            data["unrelated_health_question"] = True
            logger.info("safety screen left an unrelated health question out of scope")
        final = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        doc = message.get(SPACY_DOCS[TEXT])
        subject = None
        if final == "faq" and not routing.reason and doc is not None:
            subject = other_subject(doc)
        if subject is not None:
            # A question about another treatment, shaped like an FAQ question: the
            # out-of-scope answer (GP, pharmacist, clinic phone), never a needling answer.
            data["other_subject"] = subject.ent_id_ or subject.label_.lower()
            data["model_ranking"] = message.get(INTENT_RANKING_KEY) or []
            _decide(message, "out_of_scope", data["model_ranking"])
            logger.info("faq answer withheld: the question is about another treatment (%s)", data["other_subject"])
        message.set(SAFETY_KEY, data, add_to_output=True)
