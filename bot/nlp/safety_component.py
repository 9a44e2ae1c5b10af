"""Rasa NLU component that runs the deterministic safety screen on every message.

It sits after the intent classifiers and before the ``FallbackClassifier``. When
the screen finds a reason to involve staff that the model missed, it re-routes
the message to the staff-bound intent (``report_adverse_event`` for emergencies
and problems after treatment, ``ask_contraindication`` for the patient's own
health situation) with full confidence, so the dialogue rules take over; the
model's own guess stays in the ranking for audit. The verdict is attached to the
parse result under ``safety`` so actions and escalation records can cite the
matched terms.

Last, an FAQ answer is withheld from a question about another treatment ("does
cupping hurt?"): see :mod:`bot.nlp.other_subject`.
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

from bot.nlp.other_subject import other_subject
from bot.safety.screen import QUESTION, TREATMENT_CONTEXT, Assessment, assess

logger = logging.getLogger(__name__)

SAFETY_KEY = "safety"
STAFF_INTENTS = {
    "emergency": "report_adverse_event",
    "adverse_event": "report_adverse_event",
    "contraindication": "ask_contraindication",
    "human_request": "request_human",
}
INTENT_REASONS = {
    "report_adverse_event": "adverse_event",
    "ask_contraindication": "contraindication",
    "request_human": "human_request",
}
PRIORITY = ["emergency", "adverse_event", "contraindication", "human_request"]
STAFF_ONLY = {"ask_contraindication", "report_adverse_event", "nlu_fallback"}
# How sure the model must be that a message is unrelated before a bare condition word
# in it is not treated as a question about dry needling.
UNRELATED_CONFIDENCE = 0.5


def _unrelated_health_question(verdict: Assessment, text: str, intent: Dict[Text, Any]) -> bool:
    """A general medical question that is not about dry needling ("how do I get rid of a cold sore").

    Only when the model is confident the message is out of scope, the message is a
    question (a bare statement such as "I have a heart valve" always reaches staff),
    the screen's only evidence is a condition (no medicine, device, red flag or
    problem after treatment) and nothing in the message mentions treatment ("can I
    get my neck done"). The out-of-scope answer points to the GP, pharmacist and the
    clinic's phone number.
    """
    if intent.get(INTENT_NAME_KEY) != "out_of_scope" or intent.get("confidence", 0.0) < UNRELATED_CONFIDENCE:
        return False
    if verdict.reason != "contraindication" or verdict.post_treatment:
        return False
    active = [f for f in verdict.findings if f.active and f.label != "BODY_REGION"]
    lowered = text.lower()
    return (
        all(f.label == "CONDITION" and f.category != "child" for f in active)
        and bool(QUESTION.search(lowered))
        and not TREATMENT_CONTEXT.search(lowered)
    )


def _over_cautious(verdict: Assessment, predicted: Optional[str]) -> bool:
    """Whether the model's staff-bound guess has nothing behind it in the message.

    Only narrow cases: every health term is ruled out by the patient; a question
    about a complaint with no red flag and no sign of a problem after treatment;
    only mild, expected after-effects (a bit sore the next day, a small bruise); or a
    red flag inside an "if ..." clause.
    """
    red_flag = any(f.label == "RED_FLAG" and f.active for f in verdict.findings)
    if predicted == "ask_contraindication":
        return verdict.only_negated_health_terms
    if predicted == "report_adverse_event" and verdict.only_negated_health_terms and not verdict.post_treatment:
        # "no bleeding problems and I'm not on warfarin. what do I do after?": nothing reported.
        return not any(f.active and f.label in {"SYMPTOM", "RED_FLAG"} for f in verdict.findings)
    if predicted in {"report_adverse_event", "request_human"} and red_flag:
        # "What should I do if I feel faint during it?", "what would you do if someone
        # passed out?": asked about, not happening, and nobody was asked for (a request
        # for a person would have given the screen its own reason).
        return verdict.conditional and not verdict.post_treatment
    if predicted == "report_adverse_event":
        # Mild soreness or a small bruise within the normal window is answered by the
        # FAQ (what is normal, when to call); anything else after a treatment is not.
        return verdict.expected_reaction or (verdict.hypothetical and not verdict.post_treatment)
    return False


def _decide(message: Message, intent_name: str, ranking: List[Dict[Text, Any]]) -> None:
    """Set the intent with full confidence; the others drop to zero so the fallback's
    ambiguity check cannot turn the decision into "did you mean ...?"."""
    decided = {INTENT_NAME_KEY: intent_name, "confidence": 1.0}
    others = [{**r, "confidence": 0.0} for r in ranking if r.get(INTENT_NAME_KEY) != intent_name]
    message.set(INTENT, decided, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [decided] + others, add_to_output=True)


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
        ranking = message.get(INTENT_RANKING_KEY) or []
        data = verdict.as_dict()
        data["model_intent"] = intent
        data["rerouted"] = data["demoted"] = False

        if _unrelated_health_question(verdict, text, intent):
            # Answered as out of scope (GP, pharmacist, clinic phone): not a question about needling.
            data["reason"] = None
            data["unrelated_health_question"] = True
            logger.info("safety screen left an unrelated health question out of scope")
        elif verdict.reason is None and _over_cautious(verdict, predicted):
            # The model saw a health word the patient ruled out ("I'm not pregnant"),
            # or an ordinary question/expected soreness: answer the question instead.
            alternatives = [r for r in ranking if r.get(INTENT_NAME_KEY) not in STAFF_ONLY | {predicted}]
            if alternatives:
                message.set(INTENT, alternatives[0], add_to_output=True)
                message.set(INTENT_RANKING_KEY, alternatives, add_to_output=True)
                data["demoted"] = True
                logger.info("safety screen answered %s as %s", predicted, alternatives[0].get(INTENT_NAME_KEY))
            data["reason"] = None
        else:
            from_intent = INTENT_REASONS.get(predicted or "")
            reason = from_intent if _rank(from_intent) < _rank(verdict.reason) else verdict.reason
            data["reason"] = reason
            target = STAFF_INTENTS.get(reason or "")
            if verdict.reason and target:
                # The screen found evidence: route with full confidence, so neither the
                # fallback nor a competing intent can take the message elsewhere.
                data["rerouted"] = target != predicted
                # The model's own ranking stays in safety.model_ranking for audit.
                data["model_ranking"] = ranking
                _decide(message, target, ranking)
                if data["rerouted"]:
                    # No matched terms here: they are the patient's health data.
                    logger.info("safety screen re-routed %s -> %s (%s)", predicted, target, reason)
        final = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        subject = other_subject(text, tokens, doc.ents) if final == "faq" and not data["reason"] else None
        if subject is not None:
            # A question about another treatment, shaped like an FAQ question: the
            # out-of-scope answer (GP, pharmacist, clinic phone), never a needling answer.
            data["other_subject"] = subject.ent_id_ or subject.label_.lower()
            data["model_ranking"] = message.get(INTENT_RANKING_KEY) or []
            _decide(message, "out_of_scope", data["model_ranking"])
            logger.info("faq answer withheld: the question is about another treatment (%s)", data["other_subject"])
        message.set(SAFETY_KEY, data, add_to_output=True)
