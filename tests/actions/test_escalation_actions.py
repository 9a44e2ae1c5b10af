"""Escalation actions: what the patient is told, and when, against a fake store."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.escalation import (
    ActionDeclineContact,
    ActionHandleAdverseEvent,
    ActionHandleContraindication,
    ActionStopContact,
    ActionSubmitEscalation,
)
from bot.core.escalation.alerting import AlertCheck, Route
from bot.core.escalation.service import Outcome
from bot.core.store.models import Priority, Reason


class FakeService:
    """Records escalations; can pretend the database is down."""

    def __init__(self, up: bool = True, transports: tuple[str, ...] = ("email",)) -> None:
        self.up = up
        self.transports = list(transports)
        self.stored: list[Any] = []
        self.declined: list[tuple[str, Optional[str]]] = []
        self.declined_on_record_: list[Any] = []

    async def escalate(self, data: Any) -> Outcome:
        if not self.up:
            return Outcome(stored=False, spooled=True)
        self.stored.append(data)
        return Outcome(stored=True, escalation_id="esc-1", created=True)

    async def urgent_alert(self) -> AlertCheck:
        # The clinic open and delivery working; only the transports vary here (the whole
        # check: tests/escalation/test_alerting.py; its branches: test_emergency_alert_text.py).
        return AlertCheck(Route.alerting if self.transports else Route.not_working)

    async def consent_declined(self, sender_id: str, reason: Optional[str]) -> bool:
        self.declined.append((sender_id, reason))
        return self.up

    async def declined_on_record(self, data: Any) -> Outcome:
        self.declined_on_record_.append(data)
        return await self.escalate(data)


@pytest.fixture
def service():
    fake = FakeService()
    deps.use_service(fake)
    yield fake
    deps.use_service(None)


def tracker(text: str, intent: str, safety: dict, slots: Optional[dict] = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": [], "safety": safety}
    events = [
        {"event": "user", "text": text, "timestamp": 1.0, "parse_data": latest},
        {"event": "bot", "text": "earlier reply", "timestamp": 2.0},
    ]
    return Tracker("patient-1", slots or {}, latest, events, False, None, {}, "action_listen")


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m.get("response") for m in dispatcher.messages]


RED_FLAG = {
    "reason": "emergency",
    "personal": True,
    "findings": [{"label": "RED_FLAG", "category": "breathing", "text": "cant breathe", "negated": False, "uncertain": False}],
    "matched_terms": ["breathing:cant breathe"],
}


async def test_red_flag_is_stored_as_urgent_and_staff_alert_is_said_only_with_a_route(service):
    dispatcher = CollectingDispatcher()
    events = await ActionHandleAdverseEvent().run(dispatcher, tracker("i cant breathe", "report_adverse_event", RED_FLAG), {})
    # The guidance itself is the Rasa server's utter_adverse_event, sent before this action.
    assert responses(dispatcher) == ["utter_emergency_flagged"]
    assert (service.stored[0].reason, service.stored[0].priority) == (Reason.emergency, Priority.urgent)
    assert SlotSet("escalation_reason", "emergency") in events
    assert SlotSet("emergency", True) in events


async def test_red_flag_with_no_alert_route_says_it_is_stored_not_alerted(service):
    service.transports = []
    dispatcher = CollectingDispatcher()
    await ActionHandleAdverseEvent().run(dispatcher, tracker("i cant breathe", "report_adverse_event", RED_FLAG), {})
    assert responses(dispatcher) == ["utter_emergency_stored"]


async def test_red_flag_with_database_down_gives_the_phone_route(service):
    service.up = False
    dispatcher = CollectingDispatcher()
    await ActionHandleAdverseEvent().run(dispatcher, tracker("i cant breathe", "report_adverse_event", RED_FLAG), {})
    assert responses(dispatcher) == ["utter_emergency_not_flagged"]


async def test_model_routed_adverse_event_with_a_question_shaped_red_flag_is_still_urgent(service):
    # The action reads the reason the safety component wrote (bot.core.safety.routing): a red flag
    # the screen made no judgement on, in a message the model routed to report_adverse_event.
    from bot.core.safety.routing import route
    from bot.core.safety.screen import screen_text

    text = "my arm has gone numb, is that normal?"
    verdict = screen_text(text)
    safety = {**verdict.as_dict(), "reason": route(verdict, {"name": "report_adverse_event"}).reason}
    dispatcher = CollectingDispatcher()
    await ActionHandleAdverseEvent().run(dispatcher, tracker(text, "report_adverse_event", safety), {})
    assert service.stored[0].reason == Reason.emergency


async def test_an_emergency_in_the_contact_form_keeps_the_contact_given(service):
    slots = {"contact_name": "Ana", "contact_method": "phone", "contact_detail": "+442079460958",
             "requested_slot": "contact_consent", "escalation_reason": "human_request"}
    state = tracker("i cant breathe", "report_adverse_event", RED_FLAG, slots)
    state.active_loop = {"name": "contact_form"}
    events = await ActionHandleAdverseEvent().run(CollectingDispatcher(), state, {})
    stored = service.stored[0]
    assert (stored.contact_name, stored.contact_detail, stored.consent_given) == ("Ana", "+442079460958", None)
    assert "not given" in stored.trigger["contact_permission"]
    assert SlotSet("emergency", True) in events  # the rules end the form (action_deactivate_loop)


async def test_ordinary_soreness_is_recorded_at_once_as_a_high_priority_incident(service):
    safety = {"reason": "adverse_event", "adverse_class": "soreness"}
    dispatcher = CollectingDispatcher()
    events = await ActionHandleAdverseEvent().run(dispatcher, tracker("still sore", "report_adverse_event", safety), {})
    assert responses(dispatcher) == []  # the offer to be contacted follows (a rule)
    [stored] = service.stored
    assert (stored.reason, stored.priority, stored.consent_given) == (Reason.adverse_event, Priority.high, None)
    assert stored.trigger["adverse_class"] == "soreness"
    assert SlotSet("escalation_reason", "adverse_event") in events
    assert not any(isinstance(e, dict) and e.get("name") == "emergency" for e in events)


async def test_an_adverse_event_the_store_cannot_take_is_said_to_be_kept(service):
    service.up = False
    dispatcher = CollectingDispatcher()
    await ActionHandleAdverseEvent().run(dispatcher, tracker("bruise", "report_adverse_event", {"reason": "adverse_event"}), {})
    assert responses(dispatcher) == ["utter_adverse_event_not_recorded"]


@pytest.mark.parametrize("personal, expected", [(True, "utter_contraindication_personal"), (False, "utter_contraindication_general")])
async def test_contraindication_answer_depends_on_whether_it_is_personal(service, personal, expected):
    dispatcher = CollectingDispatcher()
    safety = {"reason": "contraindication", "personal": personal, "matched_terms": ["pregnancy:pregnant"]}
    await ActionHandleContraindication().run(dispatcher, tracker("pregnant?", "ask_contraindication", safety), {})
    assert responses(dispatcher) == [expected]


async def test_contraindication_keeps_a_more_serious_pending_reason(service):
    dispatcher = CollectingDispatcher()
    events = await ActionHandleContraindication().run(
        dispatcher, tracker("on warfarin", "ask_contraindication", {"personal": True}, {"escalation_reason": "emergency"}), {}
    )
    assert SlotSet("escalation_reason", "emergency") in events


CONTACT = {
    "contact_name": "Ana",
    "contact_method": "phone",
    "contact_detail": "+442079460958",
    "contact_consent": True,
    "escalation_reason": "contraindication",
    "escalation_trigger": {"reason": "contraindication", "matched_terms": ["pregnancy:pregnant"]},
}


async def test_submit_confirms_only_after_the_record_is_stored(service):
    dispatcher = CollectingDispatcher()
    await ActionSubmitEscalation().run(dispatcher, tracker("yes", "affirm", {}, CONTACT), {})
    assert responses(dispatcher) == ["utter_escalation_saved"]
    stored = service.stored[0]
    assert (stored.contact_name, stored.consent_given, stored.reason) == ("Ana", True, Reason.contraindication)
    assert stored.transcript[0] == {"from": "patient", "text": "yes", "time": 1.0, "intent": "affirm"}
    assert "follow_up" in dispatcher.messages[0]


async def test_submit_with_database_down_never_promises_contact(service):
    service.up = False
    dispatcher = CollectingDispatcher()
    await ActionSubmitEscalation().run(dispatcher, tracker("yes", "affirm", {}, CONTACT), {})
    assert responses(dispatcher) == ["utter_escalation_failed"]


async def test_submit_without_consent_stores_nothing(service):
    dispatcher = CollectingDispatcher()
    await ActionSubmitEscalation().run(dispatcher, tracker("yes", "affirm", {}, {**CONTACT, "contact_consent": None}), {})
    assert service.stored == []
    assert responses(dispatcher) == ["utter_contact_stopped"]


async def test_stopping_a_form_for_a_question_records_the_decision_in_the_audit_log(service):
    dispatcher = CollectingDispatcher()
    events = await ActionStopContact().run(dispatcher, tracker("stop", "stop", {}, {"escalation_reason": "human_request"}), {})
    assert service.declined == [("patient-1", "human_request")]
    assert service.stored == []
    assert ActiveLoop(None) in events
    # After an emergency the Rasa server's NLG opens this text with the emergency line.
    assert responses(dispatcher) == ["utter_contact_stopped"]


@pytest.mark.parametrize("reason", ["emergency", "adverse_event"])
@pytest.mark.parametrize("action", [ActionStopContact, ActionDeclineContact])
async def test_declining_after_an_incident_records_the_decision_on_the_incident(service, reason, action):
    dispatcher = CollectingDispatcher()
    await action().run(dispatcher, tracker("no", "deny", {}, {"escalation_reason": reason}), {})
    [record] = service.declined_on_record_
    assert (record.reason, record.consent_given) == (Reason(reason), False)
    assert record.trigger["contact_permission"] == "declined"
    assert service.declined == []
