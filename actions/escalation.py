"""Actions that hand a conversation to clinic staff.

Thin: what to store lives in :mod:`bot.core.escalation`. The patient hears "the team
will contact you" only after the escalation is committed; otherwise they get
the clinic's phone number.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.contact_options import chat_reply_possible
from actions.sms_contact import on_messaging, text_follow_up
from bot.core.escalation import record
from bot.core.escalation.alerting import AlertCheck, Route
from bot.core.safety.decision import default_table
from bot.core.safety.verdict import SafetyVerdict
from bot.core.store.chat import PENDING_WINDOW
from bot.core.store.repository import EscalationInput

logger = logging.getLogger(__name__)

FORM_SLOTS = ("contact_name", "contact_method", "contact_detail", "contact_consent", "requested_slot")


def verdict_of(tracker: Tracker) -> SafetyVerdict:
    """The safety screen's verdict on the latest message (``reason`` is what the assistant acts on)."""
    return SafetyVerdict.from_parse_data(tracker.latest_message)


def trigger_of(tracker: Tracker, reason: str) -> Dict[Text, Any]:
    """What triggered the escalation: intent, confidence, matched terms, the screen's classes."""
    return record.trigger_of(tracker.current_state(), reason)


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
    tracker: Tracker,
    reason: str,
    consent: Optional[bool],
    trigger: Optional[Dict[Text, Any]] = None,
    *,
    contact_given: bool = False,
) -> EscalationInput:
    """Build the record from the tracker (transcript snapshot taken now; see :mod:`bot.core.escalation.record`)."""
    return record.escalation_input(tracker.current_state(), reason, consent, trigger, contact_given=contact_given)


def spoken_duration(window: timedelta) -> str:
    """A delivery window as a patient reads it: "hour", "2 hours", "90 minutes"."""
    minutes = max(1, int(window.total_seconds() // 60))
    if minutes % 60:
        return f"{minutes} minutes" if minutes != 1 else "minute"
    hours = minutes // 60
    return "hour" if hours == 1 else f"{hours} hours"


def chat_follow_up(possible: bool, window: timedelta = PENDING_WINDOW) -> str:
    """What a patient who chose a reply in this chat is told: "it will appear here" only if someone can write it.

    A staff line reaches the website chat at once while it is open, and otherwise waits
    ``window`` (:data:`bot.core.store.chat.PENDING_WINDOW`, what the delivery itself uses) for
    the patient's browser to come back; after that it is never sent to the chat. So the
    promise names that window and says what to do once it has passed: call the clinic.
    """
    clinic = deps.clinic()
    if possible:
        span = spoken_duration(window)
        return (
            f" If the team replies within the next {span}, the reply will appear here while this chat is open, "
            f"or when you come back to it within the {span}. After that we can't be sure a reply will reach "
            f"you here, so if you haven't heard from us, please call us on {clinic.phone} ({clinic.hours_text()})."
        )
    return (
        " Nobody from the team is signed in to reply in this chat just now, so please call us on "
        f"{clinic.phone} ({clinic.hours_text()})."
    )


def emergency_stored_message(alert: AlertCheck) -> Dict[Text, Any]:
    """What a patient whose emergency is stored reads next, from the alert route's state now.

    "Alerted as urgent" only when the route is alerting (clinic open, a transport delivering);
    out of hours, when the team will see it (the next opening); otherwise stored, not alerted.
    """
    if alert.route == Route.alerting:
        return {"response": "utter_emergency_flagged"}
    if alert.route == Route.closed and alert.opens:
        return {"response": "utter_emergency_stored_closed", "clinic_opens": alert.opens}
    return {"response": "utter_emergency_stored"}


class ActionHandleContraindication(Action):
    """General information, or a personal question passed towards staff; never 'you are fine'."""

    def name(self) -> Text:
        return "action_handle_contraindication"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        personal = bool(verdict_of(tracker).personal)
        dispatcher.utter_message(
            response="utter_contraindication_personal" if personal else "utter_contraindication_general"
        )
        return mark_pending(tracker, "contraindication")


class ActionHandleAdverseEvent(Action):
    """A problem after treatment: recorded at once as an escalation (a clinical incident record).

    The patient has already read the guidance for it: ``utter_adverse_event``, which the
    Rasa server renders from the screen's verdict before this action runs (:mod:`bot.assistant.nlg`).
    An emergency is urgent and stored with whatever contact the patient already gave; the
    rules then end any contact form (none is offered after an emergency); any other adverse event is
    high priority, and the offer to be contacted follows (consent decides only contact).
    Whether it is an emergency is the screen's verdict in the parse data (never recomputed here).
    """

    def name(self) -> Text:
        return "action_handle_adverse_event"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        reason = "emergency" if verdict_of(tracker).emergency else "adverse_event"
        trigger = trigger_of(tracker, reason)
        consent = tracker.get_slot("contact_consent")
        data = escalation_input(tracker, reason, consent, trigger, contact_given=True)
        service = deps.service()
        outcome = await service.escalate(data)
        values = record.incident_slots(tracker.current_state(), reason, trigger)
        events: List[EventType] = [SlotSet(name, value) for name, value in values.items()]
        events.append(SlotSet("escalation_id", outcome.escalation_id))
        if reason == "emergency":
            if outcome.stored:
                dispatcher.utter_message(**emergency_stored_message(await service.urgent_alert()))
            elif outcome.spooled:
                dispatcher.utter_message(response="utter_emergency_not_flagged")
            else:
                dispatcher.utter_message(response="utter_escalation_failed")
        elif not outcome.stored:
            dispatcher.utter_message(
                response="utter_adverse_event_not_recorded" if outcome.spooled else "utter_escalation_failed"
            )
        return events


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


async def record_declined(tracker: Tracker) -> None:
    """Note a declined or stopped offer: on the incident's escalation, else in the audit log."""
    reason = tracker.get_slot("escalation_reason")
    if reason in record.INCIDENT_REASONS:
        await deps.service().declined_on_record(escalation_input(tracker, reason, False, contact_given=True))
    else:
        await deps.service().consent_declined(tracker.sender_id, reason)


class ActionStopContact(Action):
    """The patient stopped the contact form: an incident stays recorded, with the decision; phone number given.

    After an emergency the reply opens with the emergency line again (:mod:`bot.assistant.nlg`).
    """

    def name(self) -> Text:
        return "action_stop_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        await record_declined(tracker)
        dispatcher.utter_message(response="utter_contact_stopped")
        return [ActiveLoop(None)] + reset_form()


class ActionDeclineContact(Action):
    """The patient declined the offer to be contacted: an incident stays recorded, with the decision."""

    def name(self) -> Text:
        return "action_decline_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        await record_declined(tracker)
        dispatcher.utter_message(response="utter_handoff_declined")
        return []


class ActionResetContactDetails(Action):
    """Let the patient correct their answers: the form asks again from the start."""

    def name(self) -> Text:
        return "action_reset_contact_details"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[EventType]:
        dispatcher.utter_message(response="utter_contact_restart")
        return reset_form()
