"""Staff replies by text, the Rasa side: the SMS channel's staff routes pause, log, queue and hand back.

The web app's side stores each line first (tests/web/test_sms_replies.py); here the lines
are stored the same way, then the channel's ``/webhooks/twilio/staff/`` routes are called
as the web app calls them, and the fake Twilio API shows what reached the patient.
"""

from __future__ import annotations

import aiohttp
import pytest
from rasa.shared.core.events import BotUttered

from bot.core.store import chat, repository as repo
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import ChatLineKind, Priority, Reason, SmsOutbound, SmsOutboundStatus, utcnow
from tests.support.fake_twilio import inbound
from tests.support.sms_channel import BRIDGE_SECRET, start_sms_server, stop_sms_server

PATIENT = "+447700900555"


@pytest.fixture
async def sms(db_url, fake_twilio):
    fake_twilio.clear()
    server, sanic_server = await start_sms_server(db_url, fake_twilio)
    yield server
    await stop_sms_server(server, sanic_server)


async def conversation(sms) -> tuple[str, str]:
    """A patient who texted once, and an escalation of their conversation."""
    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 1)
    sender_id = sms.agent.received[0].sender_id
    engine = create_engine(sms.db_url)
    async with session_factory(engine)() as session:
        async with session.begin():
            data = repo.EscalationInput(sender_id=sender_id, channel="sms", reason=Reason.human_request,
                                        priority=Priority.normal, trigger={}, transcript=[])
            escalation_id = (await repo.upsert_escalation(session, data)).record.id
    await engine.dispose()
    return sender_id, escalation_id


async def line(sms, sender_id: str, escalation_id: str, kind: ChatLineKind, body: str) -> int:
    engine = create_engine(sms.db_url)
    async with session_factory(engine)() as session:
        async with session.begin():
            row = await chat.add_line(session, escalation_id=escalation_id, takeover_id=None, sender_id=sender_id,
                                      kind=kind, username="sam", name="Sam Staff", body=body, now=utcnow())
    await engine.dispose()
    return row.id


async def call(sms, operation: str, body: dict, secret: str = BRIDGE_SECRET) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sms.url}/webhooks/twilio/staff/{operation}", json=body,
                             headers={"X-Bridge-Secret": secret}) as reply:
            return reply.status, await reply.json()


async def test_staff_texts_pause_the_assistant_reach_the_phone_and_stay_in_the_conversation(sms):
    sender_id, escalation_id = await conversation(sms)
    joined = await line(sms, sender_id, escalation_id, ChatLineKind.joined, "This is Sam Staff from the clinic.")
    status, body = await call(sms, "takeover", {"sender_id": sender_id, "line_id": joined})
    assert (status, body["paused"], body["queued"]) == (200, True, 1)
    message = await line(sms, sender_id, escalation_id, ChatLineKind.message, "Can you come in tomorrow at 10?")
    status, body = await call(sms, "message", {"sender_id": sender_id, "line_id": message})
    assert status == 200

    texts = await sms.sent_to(PATIENT, 3)
    assert texts[1:] == ["This is Sam Staff from the clinic.",
                         f"Sam Staff ({sms.channel.clinic.name}): Can you come in tomorrow at 10?"]
    tracker = await sms.agent.tracker_store.retrieve(sender_id)
    assert tracker.is_paused()
    staff_events = [e for e in tracker.events if isinstance(e, BotUttered) and (e.metadata or {}).get("staff")]
    assert [e.text for e in staff_events] == ["This is Sam Staff from the clinic.", "Can you come in tomorrow at 10?"]
    rows = [row for row in await sms.rows(SmsOutbound) if row.origin == "staff"]
    assert {row.escalation_id for row in rows} == {escalation_id} and {row.author for row in rows} == {"sam"}

    await sms.text(inbound(PATIENT, "yes 10 is fine"))
    await sms.settle()
    assert len(sms.bodies(PATIENT)) == 3  # the patient's answer is for staff: no automated reply

    left = await line(sms, sender_id, escalation_id, ChatLineKind.left, "The automated assistant is back.")
    status, body = await call(sms, "handback", {"sender_id": sender_id, "line_id": left})
    assert (status, body["paused"]) == (200, False)
    await sms.text(inbound(PATIENT, "thanks"))
    texts = await sms.sent_to(PATIENT, 5)
    assert texts[3:] == ["The automated assistant is back.", "echo: thanks"]


async def test_a_repeated_call_queues_a_line_once(sms):
    sender_id, escalation_id = await conversation(sms)
    joined = await line(sms, sender_id, escalation_id, ChatLineKind.joined, "This is Sam.")
    await call(sms, "takeover", {"sender_id": sender_id, "line_id": joined})
    status, body = await call(sms, "takeover", {"sender_id": sender_id, "line_id": joined})
    assert (status, body["queued"]) == (200, 0)
    await sms.settle()
    assert sms.bodies(PATIENT).count("This is Sam.") == 1


async def test_a_staff_text_to_a_number_that_opted_out_is_withheld(sms):
    sender_id, escalation_id = await conversation(sms)
    await sms.text(inbound(PATIENT, "STOP"))
    await sms.sent_to(PATIENT, 2)
    joined = await line(sms, sender_id, escalation_id, ChatLineKind.joined, "This is Sam.")
    status, _ = await call(sms, "takeover", {"sender_id": sender_id, "line_id": joined})
    assert status == 200
    await sms.settle()
    assert "This is Sam." not in sms.bodies(PATIENT)
    [row] = [row for row in await sms.rows(SmsOutbound) if row.origin == "staff"]
    assert row.status == SmsOutboundStatus.suppressed and row.last_error == "opted_out"


async def test_a_message_into_a_conversation_the_assistant_has_is_refused(sms):
    sender_id, escalation_id = await conversation(sms)
    message = await line(sms, sender_id, escalation_id, ChatLineKind.message, "hello")
    status, body = await call(sms, "message", {"sender_id": sender_id, "line_id": message})
    assert (status, body["error"]) == (409, "not_paused")
    await sms.settle()
    assert len(sms.bodies(PATIENT)) == 1


@pytest.mark.parametrize("body, expected", [
    ({"sender_id": "a" * 22 + "." + "b" * 22, "line_id": 1}, (400, "not_sms")),
    ({"sender_id": "sms-" + "0" * 24, "line_id": 1}, (404, "unknown_conversation")),
    ({"sender_id": "sms-x"}, (404, "unknown_conversation")),
])
async def test_calls_for_other_conversations_are_refused(sms, body, expected):
    status, answer = await call(sms, "takeover", body)
    assert (status, answer["error"]) == expected


async def test_calls_without_the_bridge_secret_are_refused(sms):
    sender_id, escalation_id = await conversation(sms)
    joined = await line(sms, sender_id, escalation_id, ChatLineKind.joined, "This is Sam.")
    for secret in ("", "wrong"):
        status, _ = await call(sms, "takeover", {"sender_id": sender_id, "line_id": joined}, secret=secret)
        assert status == 401
    tracker = await sms.agent.tracker_store.retrieve(sender_id)
    assert not tracker.is_paused()
