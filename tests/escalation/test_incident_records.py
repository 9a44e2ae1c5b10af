"""Every reported adverse event and emergency is an escalation from the moment it is reported.

Through the real actions and the real escalation service on a SQLite store: for every
emergency class and every adverse-event class, whatever the patient then does with the
offer to be contacted (accept and fill in the form, decline, or just leave), there is
exactly one record of the incident, at the right priority, and the record says whether
staff may contact the patient; a declined offer is on the same record with an audit entry.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import deps
from actions.escalation import ActionDeclineContact, ActionHandleAdverseEvent, ActionStopContact, ActionSubmitEscalation
from bot.core.escalation.service import EscalationService
from bot.core.store.models import AuditEvent, AuditKind, Escalation, Priority, Reason

EMERGENCY_CLASSES = [
    "breathing", "anaphylaxis", "stroke", "chest_pain", "collapse", "bleeding", "sepsis", "infection",
    "nerve_injury", "cauda_equina", "headache", "vision", "retained_needle", None,
]
ADVERSE_CLASSES = [
    "soreness", "bruising", "minor_bleeding", "tingling", "dizziness", "nausea", "fatigue", "headache",
    "swelling", "itching", "twitching", "emotional_reaction", "worse_pain", "needle_incident", "unplaced", None,
]
CONTACT = {"contact_name": "Ana", "contact_method": "phone", "contact_detail": "+442079460958"}


class Conversation:
    """A patient's conversation as the action server sees it: slots carried from action to action."""

    def __init__(self, sender: str) -> None:
        self.sender = sender
        self.slots: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.active_loop: dict[str, Any] = {}

    def say(self, text: str, intent: str, safety: Optional[dict] = None) -> Tracker:
        latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": [], "safety": safety or {}}
        self.events.append({"event": "user", "text": text, "timestamp": float(len(self.events)), "parse_data": latest,
                            "input_channel": "rest"})
        return Tracker(self.sender, dict(self.slots), latest, list(self.events), False, None, self.active_loop,
                       "action_listen")

    async def run(self, action: Any, tracker: Tracker) -> CollectingDispatcher:
        dispatcher = CollectingDispatcher()
        for event in await action.run(dispatcher, tracker, {}):
            if event.get("event") == "slot":
                self.slots[event["name"]] = event["value"]
            elif event.get("event") == "active_loop":
                self.active_loop = {"name": event["name"]} if event["name"] else {}
        return dispatcher


@pytest.fixture
def real_service(service: EscalationService):
    deps.use_service(service)
    yield service
    deps.use_service(None)


async def records(service: EscalationService, sender: str) -> list[Escalation]:
    async with service.sessions() as session:
        return list((await session.execute(select(Escalation).where(Escalation.sender_id == sender))).scalars())


async def audit(service: EscalationService, escalation_id: str) -> list[AuditKind]:
    async with service.sessions() as session:
        rows = await session.execute(select(AuditEvent.kind).where(AuditEvent.escalation_id == escalation_id))
        return list(rows.scalars())


async def report(conversation: Conversation, safety: dict) -> CollectingDispatcher:
    return await conversation.run(ActionHandleAdverseEvent(), conversation.say("something happened", "report_adverse_event", safety))


@pytest.mark.parametrize("kind", ADVERSE_CLASSES)
@pytest.mark.parametrize("then", ["accept", "decline", "abandon", "stop_form"])
async def test_an_adverse_event_is_recorded_whatever_the_patient_does_next(real_service, kind, then):
    who = f"ae-{kind}-{then}"
    conversation = Conversation(who)
    await report(conversation, {"reason": "adverse_event", "adverse_class": kind})
    [first] = await records(real_service, who)
    assert (first.reason, first.priority, first.consent_given) == (Reason.adverse_event, Priority.high, None)

    if then == "accept":
        conversation.slots.update(CONTACT, contact_consent=True)
        await conversation.run(ActionSubmitEscalation(), conversation.say("yes", "affirm"))
    elif then == "decline":
        await conversation.run(ActionDeclineContact(), conversation.say("no thanks", "deny"))
    elif then == "stop_form":
        conversation.slots.update(contact_name="Ana")
        await conversation.run(ActionStopContact(), conversation.say("stop", "stop"))

    [record] = await records(real_service, who)
    assert record.id == first.id
    expected = {"accept": True, "decline": False, "stop_form": False, "abandon": None}[then]
    assert record.consent_given is expected
    kinds = await audit(real_service, record.id)
    assert AuditKind.escalation_created in kinds
    assert (AuditKind.consent_declined in kinds) is (expected is False)
    if then == "accept":
        assert (record.contact_name, record.contact_detail) == ("Ana", "+442079460958")
    if kind:
        assert record.trigger.get("adverse_class") == kind or any(
            h.get("adverse_class") == kind for h in record.trigger.get("history", [])
        )


@pytest.mark.parametrize("kind", EMERGENCY_CLASSES)
@pytest.mark.parametrize("then", ["decline", "abandon", "stop"])
async def test_an_emergency_is_recorded_at_once_as_urgent_with_no_form(real_service, kind, then):
    who = f"em-{kind}-{then}"
    conversation = Conversation(who)
    conversation.slots.update(contact_name="Ana")  # given earlier in the conversation, before any consent
    dispatcher = await report(conversation, {"reason": "emergency", "red_flag_class": kind, "care": "999"})
    assert [m["response"] for m in dispatcher.messages] == ["utter_emergency_flagged"]
    assert conversation.slots["emergency"] is True
    assert conversation.slots["emergency_info"]["red_flag_class"] == kind

    if then == "decline":
        await conversation.run(ActionDeclineContact(), conversation.say("no", "deny"))
    elif then == "stop":
        await conversation.run(ActionStopContact(), conversation.say("stop", "stop"))

    [record] = await records(real_service, who)
    assert (record.reason, record.priority) == (Reason.emergency, Priority.urgent)
    assert record.contact_name == "Ana"
    assert record.consent_given is (None if then == "abandon" else False)
    kinds = await audit(real_service, record.id)
    assert AuditKind.red_flag_triggered in kinds
    assert (AuditKind.consent_declined in kinds) is (then != "abandon")


async def test_a_declined_offer_with_the_store_down_is_spooled_not_lost(down_service, spool):
    deps.use_service(down_service)
    try:
        conversation = Conversation("ae-down")
        await report(conversation, {"reason": "adverse_event", "adverse_class": "tingling"})
        await conversation.run(ActionDeclineContact(), conversation.say("no", "deny"))
    finally:
        deps.use_service(None)
    assert spool.pending() == 2
