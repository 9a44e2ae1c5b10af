"""The contact form offers "Reply in this chat" only on the website chat while staff are signed in."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import contact_options, deps
from actions.contact_options import ActionAskContactMethod, chat_reply_possible
from actions.escalation import ActionSubmitEscalation
from actions.forms import ValidateContactForm
from bot.core.escalation.service import EscalationService, Outcome
from bot.core.escalation.spool import Spool
from bot.core.store import staff_sessions
from bot.core.store.models import StaffUser, utcnow


def tracker(channel: str = "socketio", slots: Optional[dict] = None, text: str = "chat") -> Tracker:
    latest = {"text": text, "intent": {"name": "inform", "confidence": 1.0}, "entities": []}
    events = [{"event": "user", "text": text, "timestamp": 1.0, "parse_data": latest, "input_channel": channel}]
    return Tracker("patient-1", slots or {}, latest, events, False, None, {"name": "contact_form"}, "action_listen")


@pytest.fixture
def staff_online():
    """Set whether staff are signed in; restored after the test."""
    state = {"online": False}

    async def check() -> bool:
        return state["online"]

    contact_options.use_presence_check(check)
    yield state
    contact_options.use_presence_check(None)


async def ask(channel: str = "socketio") -> list[Optional[str]]:
    dispatcher = CollectingDispatcher()
    await ActionAskContactMethod().run(dispatcher, tracker(channel), {})
    return [m.get("response") for m in dispatcher.messages]


async def test_chat_is_offered_on_the_website_chat_while_staff_are_signed_in(staff_online):
    staff_online["online"] = True
    assert await ask() == ["utter_ask_contact_method_with_chat"]


async def test_only_phone_and_email_while_nobody_is_signed_in(staff_online):
    assert await ask() == ["utter_ask_contact_method"]


@pytest.mark.parametrize("channel", ["rest", "twilio", None])
async def test_only_phone_and_email_on_other_channels_even_with_staff_signed_in(staff_online, channel):
    staff_online["online"] = True
    assert await ask(channel) == ["utter_ask_contact_method"]


async def test_a_presence_check_that_fails_or_hangs_offers_no_chat(monkeypatch):
    async def broken() -> bool:
        raise OSError("database unreachable")

    async def hanging() -> bool:
        await asyncio.sleep(10)
        return True

    monkeypatch.setattr(contact_options, "PRESENCE_TIMEOUT", 0.2)
    try:
        for check in (broken, hanging):
            contact_options.use_presence_check(check)
            assert await ask() == ["utter_ask_contact_method"]
    finally:
        contact_options.use_presence_check(None)


async def validate(text: str) -> tuple[dict, list]:
    dispatcher = CollectingDispatcher()
    slots = await ValidateContactForm().validate_contact_method(text, dispatcher, tracker(text=text), {})
    return slots, [m.get("response") for m in dispatcher.messages]


async def test_typing_chat_when_it_was_not_offered_is_refused_with_the_reason(staff_online):
    slots, said = await validate("reply in this chat")
    assert slots == {"contact_method": None}
    assert said == ["utter_chat_reply_unavailable"]


async def test_chat_is_accepted_while_staff_are_signed_in(staff_online):
    staff_online["online"] = True
    slots, said = await validate("chat")
    assert slots == {"contact_method": "chat", "contact_detail": "this conversation (socketio)"}
    assert said == []


async def test_phone_is_accepted_whoever_is_signed_in(staff_online):
    assert (await validate("phone"))[0] == {"contact_method": "phone"}


class Stored:
    async def escalate(self, data) -> Outcome:
        return Outcome(stored=True, escalation_id="esc-1", created=True)


CHAT_CONTACT = {
    "contact_name": "Ana", "contact_method": "chat", "contact_detail": "this conversation (socketio)",
    "contact_consent": True, "escalation_reason": "human_request",
}


@pytest.mark.parametrize("online", [True, False])
async def test_the_reply_will_appear_here_only_if_someone_can_write_it(staff_online, online):
    staff_online["online"] = online
    deps.use_service(Stored())
    try:
        dispatcher = CollectingDispatcher()
        await ActionSubmitEscalation().run(dispatcher, tracker(slots=CHAT_CONTACT, text="yes"), {})
    finally:
        deps.use_service(None)
    follow_up = dispatcher.messages[0]["follow_up"]
    assert ("the reply will appear here" in follow_up) is online
    assert ("Nobody from the team is signed in" in follow_up and deps.clinic().phone in follow_up) is not online


async def test_presence_is_read_from_the_store_the_dashboard_writes(sessions):
    deps.use_service(EscalationService(sessions, Spool(__import__("pathlib").Path("/nonexistent")), []))
    try:
        assert not await chat_reply_possible(tracker())
        async with sessions() as session:
            async with session.begin():
                user = StaffUser(username="jane", display_name="Jane", password_hash="x")
                session.add(user)
                await session.flush()
                await staff_sessions.start(
                    session, user.id, now=utcnow(), idle=timedelta(minutes=15), lifetime=timedelta(hours=12)
                )
        assert await chat_reply_possible(tracker())
        assert not await chat_reply_possible(tracker("rest"))
    finally:
        deps.use_service(None)
