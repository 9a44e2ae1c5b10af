"""A contact form left unfinished until the next session leaves an audit entry; the disclosure always goes out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import deps
from actions.session import ActionSessionStart, abandoned_form
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.store.models import AuditEvent, AuditKind, Reason
from tests.support.cases import add_case

SENDER = "web-abandon-1"
NAME = "Zebulon Quartzfeather"
CLOCK = [1_700_000_000.0]


def at() -> float:
    CLOCK[0] += 5
    return CLOCK[0]


def user(text: str, intent: str) -> dict[str, Any]:
    return {"event": "user", "text": text, "timestamp": at(), "parse_data": {"intent": {"name": intent}}}


def bot(response: str) -> dict[str, Any]:
    return {"event": "bot", "text": f"({response})", "timestamp": at(), "metadata": {"utter_action": response}}


def slot(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value, "timestamp": at()}


def loop(name: Optional[str]) -> dict[str, Any]:
    return {"event": "active_loop", "name": name, "timestamp": at()}


def opening() -> list[dict[str, Any]]:
    return [{"event": "session_started", "timestamp": at()}, bot("utter_disclosure")]


def adverse_event_then_form(asked_for: str = "contact_name") -> list[dict[str, Any]]:
    """An adverse event (recorded at once), the offer accepted, the form asking its first question."""
    return opening() + [
        user("my arm has been sore and bruised for four days", "report_adverse_event"),
        bot("utter_adverse_event"), slot("escalation_reason", "adverse_event"), slot("escalation_id", "inc-1"),
        bot("utter_offer_handoff"), user("yes", "affirm"), loop("contact_form"), slot("requested_slot", asked_for),
        bot(f"utter_ask_{asked_for}"),
    ]


def human_request_form() -> list[dict[str, Any]]:
    """Asked for a person, gave a name, then went quiet at the contact route."""
    return opening() + [
        user("can I talk to someone", "request_human"), bot("utter_human_handoff"),
        slot("escalation_reason", "human_request"), loop("contact_form"), slot("requested_slot", "contact_name"),
        bot("utter_ask_contact_name"), user(NAME, "inform"), slot("contact_name", NAME),
        slot("requested_slot", "contact_method"), bot("utter_ask_contact_method"),
    ]


@pytest.fixture
async def store(sessions, tmp_path: Path):
    deps.use_service(EscalationService(sessions, Spool(tmp_path / "spool"), []))
    yield sessions
    deps.use_service(None)


async def start_session(events: list[dict[str, Any]], sender: str = SENDER) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    result = await ActionSessionStart().run(
        dispatcher, Tracker(sender, {}, {}, events, False, None, {}, "action_listen"), {}
    )
    assert [m.get("response") for m in dispatcher.messages] == ["utter_disclosure"]
    assert result == [SessionStarted(), ActionExecuted("action_listen")]
    return dispatcher


async def entries(sessions) -> list[AuditEvent]:
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == AuditKind.contact_form_abandoned)
        return list((await session.execute(query.order_by(AuditEvent.id))).scalars())


async def test_a_form_left_after_an_adverse_event_is_noted_on_its_incident_record(store):
    incident = await add_case(store, reason=Reason.adverse_event, sender=SENDER)

    await start_session(adverse_event_then_form("contact_detail"))

    [entry] = await entries(store)
    assert entry.escalation_id == incident and entry.sender_id == SENDER
    assert entry.detail == {"stage": "form", "reason": "adverse_event", "asked_for": "contact_detail",
                            "ended_by": "new_session"}


async def test_a_human_request_left_unfinished_is_kept_against_the_conversation_without_what_was_typed(store):
    await start_session(human_request_form())

    [entry] = await entries(store)
    assert entry.escalation_id is None and entry.sender_id == SENDER
    assert entry.detail["reason"] == "human_request" and entry.detail["asked_for"] == "contact_method"
    assert NAME not in str(entry.detail)


async def test_an_offer_to_be_contacted_left_unanswered_counts_too(store):
    events = opening() + [
        user("I'm pregnant, can I have it?", "ask_contraindication"), bot("utter_contraindication_personal"),
        slot("escalation_reason", "contraindication"), bot("utter_offer_handoff"),
    ]
    await start_session(events)

    [entry] = await entries(store)
    assert entry.detail["stage"] == "offer" and entry.detail["reason"] == "contraindication"


async def test_a_restarted_conversation_is_read_from_before_the_restart(store):
    events = adverse_event_then_form() + [user("/restart", "restart"), {"event": "restart", "timestamp": at()}]
    await start_session(events)

    [entry] = await entries(store)
    assert entry.detail["ended_by"] == "restart" and entry.detail["stage"] == "form"


@pytest.mark.parametrize("ending", [
    # the form completed and was submitted
    [loop(None), slot("requested_slot", None), bot("utter_escalation_saved"), slot("escalation_reason", None)],
    # the patient stopped it
    [user("stop", "stop"), bot("utter_contact_stopped"), loop(None), slot("requested_slot", None)],
])
async def test_a_finished_or_stopped_form_leaves_nothing(store, ending):
    await start_session(adverse_event_then_form() + ending)
    assert await entries(store) == []


async def test_a_declined_offer_or_a_conversation_that_moved_on_leaves_nothing(store):
    declined = opening() + [
        user("sore for days", "report_adverse_event"), bot("utter_adverse_event"),
        slot("escalation_reason", "adverse_event"), bot("utter_offer_handoff"), user("no thanks", "deny"),
        bot("utter_handoff_declined"),
    ]
    await start_session(declined)
    await start_session(opening() + [user("does it hurt", "faq"), bot("utter_faq/does_it_hurt")])
    assert await entries(store) == []


async def test_a_form_an_earlier_session_start_already_closed_is_not_noted_again(store):
    await start_session(human_request_form() + opening() + [user("hello", "greet"), bot("utter_greet")])
    assert await entries(store) == []


async def test_the_same_abandoned_form_is_noted_once_if_the_session_start_runs_again(store):
    events = human_request_form()
    await start_session(events)
    await start_session(events)
    assert len(await entries(store)) == 1


def test_the_form_is_read_from_the_latest_session_only():
    form = abandoned_form(human_request_form())
    assert form is not None and form.stage == "form" and form.asked_for == "contact_method"
    assert abandoned_form(human_request_form() + opening()) is None
    assert abandoned_form([]) is None


class BrokenService:
    """A store that fails the way a database that is down does."""

    def sessions(self):
        raise OSError("database unavailable")


async def test_a_store_that_is_down_never_costs_the_patient_the_disclosure(caplog):
    deps.use_service(BrokenService())
    try:
        await start_session(human_request_form())
    finally:
        deps.use_service(None)
    assert "could not record an abandoned contact form (OSError)" in caplog.text
    assert NAME not in caplog.text
