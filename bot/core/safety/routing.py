"""Step 4 of the screen: from the verdict (and the NLU model's guess) to the intent the assistant acts on.

One pure function, :func:`route`, used by the Rasa component (:mod:`bot.assistant.nlp.safety_component`)
and by anything that must predict what the assistant does (evaluation, tests):

* The screen gave a reason: the message goes to that reason's staff intent with full
  confidence, whatever the model guessed. One narrow exception: a general medical
  question the model is sure is unrelated ("how do I get rid of a cold sore"), whose only
  evidence is a condition, with nothing tying it to treatment, gets the out-of-scope answer
  (GP, pharmacist, the clinic's phone).
* The screen *cleared* the model's staff guess: every finding that could explain it (symptoms
  and red flags for an adverse event; conditions, medicines and devices for a
  contraindication; a request or a red flag for a person) was judged ordinary (ruled out, a
  question about risk, an expected after-effect). An adverse-event guess with no symptom at
  all is cleared when every health term was ruled out and no treatment is named ("no
  bleeding problems and I'm not on warfarin, what do I do after?"). Then the model's best
  other intent is used.
* Otherwise the model's intent stands. **The model alone can still send a message to
  staff** (``ask_contraindication``, ``report_adverse_event``, ``request_human``) when the
  screen found nothing to judge; the screen never turns a staff-bound message into an
  ordinary one except by clearing it as above.

The reason the actions act on is ``safety.reason`` in the parse data (:func:`is_emergency`).
A message the model alone routed to ``report_adverse_event`` that names a red flag the screen
deferred on (fever, numbness with no treatment named) counts as an emergency.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from bot.core.safety.verdict import SafetyVerdict, Verdict
from bot.core.vocabulary import vocabulary

if TYPE_CHECKING:
    from bot.core.safety.catalogue import Catalogue

INTENT_NAME = "name"
OUT_OF_SCOPE = "out_of_scope"
#: The staff-bound intents and the reason each stands for when the model alone chose it: the
#: least serious reason the decision table routes to the intent (never an emergency).
INTENT_REASONS = vocabulary().reason_of_intent
#: The findings that could explain each staff-bound guess of the model: the guess is overruled
#: only when the screen judged all of them ordinary.
EXPLAINS = {
    "report_adverse_event": frozenset({"SYMPTOM", "RED_FLAG", "CARE_SEEKING"}),
    "ask_contraindication": frozenset({"CONDITION", "MEDICATION", "DEVICE", "GENERAL_CONTRAINDICATION"}),
    "request_human": frozenset({"HUMAN_REQUEST", "RED_FLAG"}),
}
HEALTH = EXPLAINS["ask_contraindication"]
#: Never offered as the alternative when a staff-bound guess is overruled.
NOT_ALTERNATIVES = frozenset(INTENT_REASONS) | {"nlu_fallback"}
#: How sure the model must be that a message is unrelated before a bare condition in a
#: general medical question stops counting as a question about dry needling.
UNRELATED_CONFIDENCE = 0.5


@dataclass
class Routing:
    """What the assistant does with a message."""

    intent: Optional[str]
    #: The reason the actions act on (``None``: an ordinary message).
    reason: Optional[str]
    #: The decided intent gets full confidence and every other intent zero.
    decisive: bool = False
    rerouted: bool = False
    demoted: bool = False
    unrelated_health_question: bool = False
    ranking: list[dict[str, Any]] = field(default_factory=list)

    @property
    def staff_bound(self) -> bool:
        return self.intent in INTENT_REASONS


def _unrelated_health_question(verdict: Verdict, model: Mapping[str, Any]) -> bool:
    if model.get(INTENT_NAME) != OUT_OF_SCOPE or model.get("confidence", 0.0) < UNRELATED_CONFIDENCE:
        return False
    if verdict.reason != "contraindication" or "TREATED" in verdict.signals:
        return False
    reasons = [e for e in verdict.evidence if e.gives_reason]
    return (
        all(e.label == "CONDITION" and e.category != "child" for e in reasons)
        and "QUESTION" in verdict.signals
        and "TREATMENT_MENTIONED" not in verdict.signals
    )


def overruled(verdict: Verdict, predicted: str) -> bool:
    """Whether the screen's judgement clears the model's staff-bound guess ``predicted``."""
    if verdict.reason:
        return False
    if verdict.cleared_for(EXPLAINS[predicted]):
        return True
    if predicted == "report_adverse_event" and "TREATED" not in verdict.signals:
        reported = [e for e in verdict.evidence if e.label in EXPLAINS[predicted]]
        return not reported and verdict.cleared_for(HEALTH)
    return False


def route(
    verdict: Verdict,
    model: Optional[Mapping[str, Any]] = None,
    ranking: Sequence[Mapping[str, Any]] = (),
    staff_intent: Optional[Mapping[str, str]] = None,
) -> Routing:
    """The intent and reason for a message, from the screen's verdict and the model's guess.

    Args:
        verdict: the screen's verdict.
        model: the model's intent (``{"name", "confidence"}``); ``None`` for the screen alone.
        ranking: the model's intent ranking.
        staff_intent: reason -> intent (a decision table's); the table in force's otherwise.
    """
    model = model or {}
    predicted = model.get(INTENT_NAME)
    targets = dict(staff_intent or vocabulary().intent)
    ranking = [dict(r) for r in ranking]
    if verdict.language != "en" and not verdict.reason:
        # Another language with no red flag: the model read English-shaped features of it.
        return Routing(intent=OUT_OF_SCOPE, reason=None, decisive=True, rerouted=predicted != OUT_OF_SCOPE, ranking=ranking)
    if verdict.reason:
        if _unrelated_health_question(verdict, model):
            return Routing(intent=OUT_OF_SCOPE, reason=None, unrelated_health_question=True, ranking=ranking)
        target = targets[verdict.reason]
        return Routing(intent=target, reason=verdict.reason, decisive=True, rerouted=target != predicted, ranking=ranking)
    if predicted in INTENT_REASONS and overruled(verdict, predicted):
        alternatives = [r for r in ranking if r.get(INTENT_NAME) not in NOT_ALTERNATIVES]
        if alternatives:
            return Routing(intent=alternatives[0].get(INTENT_NAME), reason=None, demoted=True, ranking=alternatives)
    reason = INTENT_REASONS.get(predicted or "")
    if reason == "adverse_event" and any(e.label == "RED_FLAG" and e.outcome == "defer" for e in verdict.evidence):
        reason = "emergency"
    return Routing(intent=predicted, reason=reason, ranking=ranking)


def staff_bound(verdict: Verdict, model: Optional[Mapping[str, Any]] = None) -> bool:
    """Whether the assistant sends the message to staff (with ``model=None``: the screen alone)."""
    return route(verdict, model).staff_bound


def is_emergency(parse_data: Mapping[str, Any]) -> bool:
    """Whether a parsed message gets urgent guidance first (the verdict in ``parse_data["safety"]``)."""
    return SafetyVerdict.from_parse_data(parse_data).emergency


def describe(verdict: Verdict, reason: Optional[str], catalogue: "Catalogue") -> Verdict:
    """The verdict with what the reply to ``reason`` speaks to: for an emergency, the red-flag
    class and its care level (999 before 111 when several classes are found); for an adverse
    event, the after-effect reported, or ``"unplaced"`` when none was found."""
    red_flag_class = care = adverse_class = None
    if reason == "emergency":
        deciding = [e for e in verdict.evidence if e.gives_reason and e.outcome == "emergency"]
        # A red flag the screen deferred on, made an emergency by the model's adverse-event guess.
        deciding = deciding or [e for e in verdict.evidence if e.label == "RED_FLAG" and e.outcome == "defer"]
        classes = [c for c in (catalogue.class_of(e.category, e.label) for e in deciding) if c is not None]
        chosen = next((c for c in classes if c.care == "999"), classes[0] if classes else None)
        red_flag_class = chosen.id if chosen else None
        care = chosen.care if chosen else "999"
    elif reason == "adverse_event":
        reported = [e for e in verdict.evidence if e.gives_reason and e.outcome == "adverse_event" and e.label == "SYMPTOM"]
        adverse_class = reported[0].category if reported else "unplaced"
    return replace(verdict, red_flag_class=red_flag_class, care=care, adverse_class=adverse_class)
