"""Rasa NLU component that runs the deterministic safety screen on every message.

It sits after the intent classifiers and before the ``FallbackClassifier``. When
the screen finds a reason to involve staff that the model missed, it re-routes
the message to the staff-bound intent (``report_adverse_event`` for emergencies
and problems after treatment, ``ask_contraindication`` for the patient's own
health situation) with full confidence, so the dialogue rules take over; the
model's own guess stays in the ranking for audit. The verdict is attached to the
parse result under ``safety`` so actions and escalation records can cite the
matched terms.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.safety.screen import assess

logger = logging.getLogger(__name__)

SAFETY_KEY = "safety"
STAFF_INTENTS = {
    "emergency": "report_adverse_event",
    "adverse_event": "report_adverse_event",
    "contraindication": "ask_contraindication",
}
INTENT_REASONS = {
    "report_adverse_event": "adverse_event",
    "ask_contraindication": "contraindication",
    "request_human": "human_request",
}
PRIORITY = ["emergency", "adverse_event", "contraindication", "human_request"]


def _rank(reason: Optional[str]) -> int:
    return PRIORITY.index(reason) if reason in PRIORITY else len(PRIORITY)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class SafetyScreen(GraphComponent):
    """Re-route messages that must reach clinic staff, whatever the model guessed."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """No options: the rules live in :mod:`bot.safety.screen`."""
        return {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SafetyScreen":
        """Create the component (nothing to train or load)."""
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Screen each message and re-route it when staff must be involved."""
        for message in messages:
            self._screen(message)
        return messages

    def _screen(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        if text.startswith("/"):
            return  # a button payload: nothing the patient wrote to screen
        doc = message.get(SPACY_DOCS[TEXT])
        if doc is None:
            logger.warning("no spaCy doc on the message: the safety screen needs SpacyNLP before it")
            return
        tokens = [token.lower_ for token in doc]
        verdict = assess(text, tokens, doc.ents)
        intent = message.get(INTENT) or {}
        predicted = intent.get(INTENT_NAME_KEY)
        reason = verdict.reason
        from_intent = INTENT_REASONS.get(predicted or "")
        if _rank(from_intent) < _rank(reason):
            reason = from_intent
        data = verdict.as_dict()
        data["reason"] = reason
        data["model_intent"] = intent
        data["rerouted"] = False
        target = STAFF_INTENTS.get(reason or "")
        if target and target != predicted:
            data["rerouted"] = True
            new_intent = {INTENT_NAME_KEY: target, "confidence": 1.0}
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != target]
            message.set(INTENT, new_intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [new_intent] + ranking, add_to_output=True)
            logger.info(
                "safety screen re-routed %s -> %s (%s)", predicted, target, ", ".join(verdict.matched_terms)
            )
        message.set(SAFETY_KEY, data, add_to_output=True)
