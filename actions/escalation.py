"""Actions that hand a conversation to clinic staff.

Thin: what to store lives in :mod:`bot.escalation`. The patient hears "the team
will contact you" only after the escalation is committed; otherwise they get
the clinic's phone number.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.contact_options import chat_reply_possible
from actions.sms_contact import on_messaging, text_follow_up
from bot.escalation.service import PRIORITY_FOR
from bot.safety.decision import default_table
from bot.safety.routing import is_emergency
from bot.store.models import Reason
from bot.store.repository import EscalationInput

logger = logging.getLogger(__name__)

FORM_SLOTS = ("contact_name", "contact_method", "contact_detail", "contact_consent", "requested_slot")


def safety_of(tracker: Tracker) -> Dict[Text, Any]:
    """The safety screen's verdict on the latest message (``reason`` is what the assistant acts on)."""
    return tracker.latest_message.get("safety") or {}


def trigger_of(tracker: Tracker, reason: str) -> Dict[Text, Any]:
    """What triggered the escalation: intent, confidence, matched terms."""
    message = tracker.latest_message
    safety = safety_of(tracker)
    intent = message.get("intent") or {}
    return {
        "reason": reason,
        "intent": intent.get("name"),
        "confidence": intent.get("confidence"),
        "model_intent": (safety.get("model_intent") or {}).get("name"),
        "rerouted": bool(safety.get("rerouted")),
        "matched_terms": safety.get("matched_terms", []),
        "personal": safety.get("personal"),
        "third_party": safety.get("third_party"),
        "message": message.get("text"),
        "at": datetime.now(timezone.utc).isoformat(),
    }


def pending_reason(tracker: Tracker, new: str) -> str:
    """Keep the more serious of the conversation's pending reason and ``new``."""
    current = tracker.get_slot("escalation_reason")
    # The severity order is the decision table's (data/safety/decision_table.yml).
    return default_table().most_serious([current, new]) or new


def mark_pending(tracker: Tracker, reason: str) -> List[EventType]:
    """Record why the conversation may be escalated, unless a more serious reason is pending."""
    kept = pending_reason(tracker, reason)
    events: List[EventType] = [SlotSet("escalation_reason", kept)]
    if kept == reason:
        events.append(SlotSet("escalation_trigger", trigger_of(tracker, reason)))
    return events


def reset_form() -> List[EventType]:
    """Clear the contact form's slots."""
    return [SlotSet(slot, None) for slot in FORM_SLOTS]


def escalation_input(
    tracker: Tracker, reason: str, consent: Optional[bool], trigger: Optional[Dict[Text, Any]] = None
) -> EscalationInput:
    """Build the record from the tracker (transcript snapshot taken now)."""
    trigger = trigger or tracker.get_slot("escalation_trigger") or trigger_of(tracker, reason)
    method = tracker.get_slot("contact_method") if consent else None
    return EscalationInput(
        sender_id=tracker.sender_id,
        channel=tracker.get_latest_input_channel() or "unknown",
        reason=Reason(reason),
        priority=PRIORITY_FOR[Reason(reason)],
        trigger=trigger,
        transcript=deps.transcript(tracker.events),
        contact_name=tracker.get_slot("contact_name") if consent else None,
        contact_method=method,
        contact_detail=tracker.get_slot("contact_detail") if consent else None,
        consent_given=consent,
    )


def chat_follow_up(possible: bool) -> str:
    """What a patient who chose a reply in this chat is told: "it will appear here" only if someone can write it."""
    if possible:
        return " Keep this chat open or come back to it: the reply will appear here."
    clinic = deps.clinic()
    return (
        " Nobody from the team is signed in to reply in this chat just now, so please call us on "
        f"{clinic.phone} ({clinic.hours_text()})."
    )


class ActionHandleContraindication(Action):
    """General information, or a personal question passed towards staff; never 'you are fine'."""

    def name(self) -> Text:
        return "action_handle_contraindication"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        safety = safety_of(tracker)
        personal = bool(safety.get("personal"))
        dispatcher.utter_message(
            response="utter_contraindication_personal" if personal else "utter_contraindication_general"
        )
        return mark_pending(tracker, "contraindication")


class ActionHandleAdverseEvent(Action):
    """Red flags: urgent guidance first, then an urgent escalation stored at once.

    Whether it is an emergency is the screen's verdict in the parse data (never recomputed here).
    """

    def name(self) -> Text:
        return "action_handle_adverse_event"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        red_flag = is_emergency(tracker.latest_message)
        if not red_flag:
            dispatcher.utter_message(response="utter_soreness_advice")
            return mark_pending(tracker, "adverse_event")

        dispatcher.utter_message(response="utter_red_flag_urgent")
        trigger = trigger_of(tracker, "emergency")
        data = escalation_input(tracker, "emergency", consent=tracker.get_slot("contact_consent"), trigger=trigger)
        outcome = await deps.service().escalate(data)
        if outcome.stored:
            dispatcher.utter_message(response="utter_emergency_flagged")
        else:
            dispatcher.utter_message(response="utter_emergency_not_flagged")
        return [
            SlotSet("escalation_reason", "emergency"),
            SlotSet("escalation_trigger", trigger),
            SlotSet("escalation_id", outcome.escalation_id),
        ]


class ActionHandleHumanRequest(Action):
    """The patient asked for a person: the contact form follows."""

    def name(self) -> Text:
        return "action_handle_human_request"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        dispatcher.utter_message(response="utter_human_handoff")
        return mark_pending(tracker, "human_request")


class ActionSubmitEscalation(Action):
    """Store the escalation with the patient's contact details and consent."""

    def name(self) -> Text:
        return "action_submit_escalation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        reason = tracker.get_slot("escalation_reason") or "human_request"
        if tracker.get_slot("contact_consent") is not True:
            # The form only completes with consent; this guards against a changed form.
            dispatcher.utter_message(response="utter_contact_stopped")
            return reset_form()
        outcome = await deps.service().escalate(escalation_input(tracker, reason, consent=True))
        if outcome.stored:
            follow_up = deps.clinic().follow_up_text(datetime.now(timezone.utc))
            if tracker.get_slot("contact_method") == "chat":
                follow_up += (
                    text_follow_up() if on_messaging(tracker) else chat_follow_up(await chat_reply_possible(tracker))
                )
            dispatcher.utter_message(response="utter_escalation_saved", follow_up=follow_up)
        else:
            dispatcher.utter_message(response="utter_escalation_failed")
        return reset_form() + [
            SlotSet("escalation_id", outcome.escalation_id),
            SlotSet("escalation_reason", None),
            SlotSet("escalation_trigger", None),
        ]


class ActionStopContact(Action):
    """The patient stopped or declined: nothing stored except that decision; phone number given."""

    def name(self) -> Text:
        return "action_stop_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        await deps.service().consent_declined(tracker.sender_id, tracker.get_slot("escalation_reason"))
        dispatcher.utter_message(response="utter_contact_stopped")
        if tracker.get_slot("escalation_reason") == "emergency":
            dispatcher.utter_message(response="utter_red_flag_reminder")
        return [ActiveLoop(None)] + reset_form()


class ActionResetContactDetails(Action):
    """Let the patient correct their answers: the form asks again from the start."""

    def name(self) -> Text:
        return "action_reset_contact_details"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        dispatcher.utter_message(response="utter_contact_restart")
        return reset_form()
