"""Staff texting an SMS/WhatsApp patient from the dashboard: the web app's side.

The Rasa server's SMS staff routes are replaced by :class:`FakeSmsBridge`, which marks
lines logged and queues their texts the way the real one does (tests/channels/
test_twilio_staff.py covers the real one), and records what it was asked. Runs in the
web app's environment: no Rasa, no twilio package.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.core.messaging import store
from bot.core.messaging.addresses import parse_address
from bot.core.store import chat
from bot.core.store.models import AuditEvent, AuditKind, Escalation, Priority, Reason, SmsContact, SmsOutbound, SmsOutboundStatus, Status, utcnow

API = "/staff/api/escalations"
SECRET = "sms-bridge-secret"
NUMBER = "+447700900321"
TEMPLATE = "HX" + "1" * 32


class FakeSmsBridge:
    """The SMS channel's staff routes on the Rasa server, scripted."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.calls: list[tuple[str, dict]] = []
        self.down = False

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Bridge-Secret") != SECRET:
            return web.json_response({"error": "unauthorised"}, status=401)
        if self.down:
            return web.json_response({"error": "assistant_not_ready"}, status=503)
        operation = request.match_info["op"]
        body = await request.json()
        self.calls.append((operation, body))
        async with self.sessions() as session:
            async with session.begin():
                line = await chat.get_line(session, body["line_id"])
                await chat.mark_logged(session, line.id, utcnow())
                contact = await store.contact_by_sender(session, body["sender_id"])
                await store.queue(session, contact, [line.body], utcnow(), origin="staff", author=line.author_username,
                                  escalation_id=line.escalation_id, staff_line_id=line.id,
                                  template_sid=TEMPLATE if body.get("template") else None)
        return web.json_response({"paused": operation != "handback", "queued": 1, "delivered": False})


@pytest.fixture
async def bridge(aiohttp_server, staff_db):
    fake = FakeSmsBridge(staff_db)
    app = web.Application()
    app.router.add_post("/webhooks/twilio/staff/{op}", fake.handle)
    fake.server = await aiohttp_server(app)
    return fake


@pytest.fixture
def staff_settings(staff_settings, bridge):
    return dataclasses.replace(
        staff_settings, staff_bridge_url=str(bridge.server.make_url("")).rstrip("/"), staff_bridge_secret=SECRET,
        twilio_whatsapp_template_sid=TEMPLATE,
    )


def csrf(client) -> dict:
    return {"X-CSRF-Token": client.csrf}


async def sms_case(sessions, number: str = NUMBER, *, opted_out: bool = False, last_inbound_hours: float = 1.0,
                   channel: str = "sms") -> str:
    now = utcnow()
    async with sessions() as session:
        async with session.begin():
            contact = await store.contact_for(session, parse_address(number), now)
            contact.last_inbound_at = now - timedelta(hours=last_inbound_hours)
            contact.opted_out_at = now if opted_out else None
            row = Escalation(
                id=str(uuid.uuid4()), channel=channel, sender_id=contact.sender_id, reason=Reason.human_request,
                priority=Priority.normal, trigger={"message": "<img src=x onerror=alert(1)>"}, transcript=[],
            )
            session.add(row)
            return row.id


async def audit(sessions, case: str) -> list[AuditEvent]:
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.escalation_id == case).order_by(AuditEvent.id)
        return list((await session.execute(query)).scalars())


async def test_the_first_text_takes_over_then_texts_and_hand_back_go_through_the_bridge(staff_client, staff_db, bridge):
    case = await sms_case(staff_db)

    sent = await staff_client.post(f"{API}/{case}/sms/messages", json={"text": "Hi, Sam here"}, headers=csrf(staff_client))
    assert sent.status == 200, await sent.text()
    again = await staff_client.post(f"{API}/{case}/sms/messages", json={"text": "Still there?"}, headers=csrf(staff_client))
    assert again.status == 200
    state = await (await staff_client.get(f"{API}/{case}/sms")).json()
    assert state["number"] == NUMBER and state["mine"] is True and state["holder"]["username"] == "sam"
    assert [(line["kind"], line["status"]) for line in state["lines"]] == [
        ("joined", "queued"), ("message", "queued"), ("message", "queued")]
    assert state["lines"][0]["text"].startswith("This is Sam Staff from ")

    back = await staff_client.post(f"{API}/{case}/sms/handback", headers=csrf(staff_client))
    assert back.status == 200
    assert [op for op, _ in bridge.calls] == ["takeover", "message", "message", "handback"]
    kinds = [event.kind for event in await audit(staff_db, case)]
    # The first text also takes the case: assigned to Sam and in progress.
    assert kinds == [AuditKind.chat_taken_over, AuditKind.chat_message_sent, AuditKind.case_assigned,
                     AuditKind.status_changed, AuditKind.chat_message_sent, AuditKind.chat_handed_back]
    async with staff_db() as session:
        record = await session.get(Escalation, case)
    assert (record.assignee, record.status) == ("sam", Status.in_progress)
    details = [event.detail for event in await audit(staff_db, case)]
    assert all("Hi, Sam here" not in str(detail) and NUMBER not in str(detail) for detail in details)


async def test_a_text_to_a_patient_who_opted_out_is_refused_with_a_clear_message(staff_client, staff_db, bridge):
    case = await sms_case(staff_db, opted_out=True)

    reply = await staff_client.post(f"{API}/{case}/sms/messages", json={"text": "Hello"}, headers=csrf(staff_client))

    body = await reply.json()
    assert (reply.status, body["error"]) == (409, "opted_out")
    assert "texted STOP" in body["message"]
    assert bridge.calls == []
    [event] = await audit(staff_db, case)
    assert event.kind == AuditKind.sms_reply_refused and event.detail["reason"] == "opted_out"
    async with staff_db() as session:
        assert (await session.execute(select(SmsOutbound))).first() is None


async def test_whatsapp_free_text_outside_the_window_is_refused_and_the_template_offered(staff_client, staff_db, bridge):
    case = await sms_case(staff_db, "whatsapp:" + NUMBER, last_inbound_hours=30, channel="whatsapp")

    reply = await staff_client.post(f"{API}/{case}/sms/messages", json={"text": "Hello"}, headers=csrf(staff_client))
    body = await reply.json()
    assert (reply.status, body["error"]) == (409, "whatsapp_window_closed")
    assert "24 hours" in body["message"] and "approved template" in body["message"]
    assert bridge.calls == []
    state = await (await staff_client.get(f"{API}/{case}/sms")).json()
    assert state["window_open"] is False and state["template_available"] is True and state["can_send_text"] is False

    template = await staff_client.post(f"{API}/{case}/sms/template", headers=csrf(staff_client))
    assert template.status == 200, await template.text()
    assert bridge.calls[-1] == ("message", {"sender_id": bridge.calls[-1][1]["sender_id"],
                                           "line_id": bridge.calls[-1][1]["line_id"], "template": True})
    async with staff_db() as session:
        rows = list((await session.execute(select(SmsOutbound).order_by(SmsOutbound.id))).scalars())
    assert rows[-1].template_sid == TEMPLATE


async def test_the_template_is_refused_on_sms(staff_client, staff_db, bridge):
    case = await sms_case(staff_db)
    reply = await staff_client.post(f"{API}/{case}/sms/template", headers=csrf(staff_client))
    assert (reply.status, (await reply.json())["error"]) == (409, "no_template")


async def test_a_web_chat_escalation_is_not_texted(staff_client, staff_db, bridge):
    async with staff_db() as session:
        async with session.begin():
            row = Escalation(id=str(uuid.uuid4()), channel="socketio", sender_id="web-1", reason=Reason.human_request,
                             priority=Priority.normal, trigger={}, transcript=[])
            session.add(row)
    reply = await staff_client.post(f"{API}/{row.id}/sms/messages", json={"text": "hi"}, headers=csrf(staff_client))
    assert (reply.status, (await reply.json())["error"]) == (409, "not_sms")


async def test_when_the_assistants_server_is_down_nothing_is_sent_and_staff_are_told(staff_client, staff_db, bridge):
    case = await sms_case(staff_db)
    bridge.down = True
    reply = await staff_client.post(f"{API}/{case}/sms/messages", json={"text": "Hello"}, headers=csrf(staff_client))
    body = await reply.json()
    assert (reply.status, body["error"]) == (503, "chat_server_unavailable")
    state = await (await staff_client.get(f"{API}/{case}/sms")).json()
    assert state["holder"] is None
    assert {line["status"] for line in state["lines"]} == {"failed"}


async def test_posts_without_csrf_are_refused_and_anonymous_requests_are_not_served(staff_client, anon_client, staff_db,
                                                                                  bridge):
    case = await sms_case(staff_db)
    reply = await staff_client.post(f"{API}/{case}/sms/messages", json={"text": "hi"})
    assert reply.status == 403
    assert (await anon_client.get(f"{API}/{case}/sms")).status == 401
    assert bridge.calls == []


async def test_the_conversation_page_shows_the_number_the_refusals_and_the_form(staff_client, staff_db, bridge):
    case = await sms_case(staff_db)
    page = await (await staff_client.get(f"/staff/escalations/{case}")).text()
    assert 'id="sms"' in page and NUMBER in page and f"/staff/api/escalations/{case}/sms/messages" in page
    assert "Only conversations in the website chat can be taken over" not in page
    assert "<img src=x" not in page

    opted = await sms_case(staff_db, "+447700900999", opted_out=True)
    page = await (await staff_client.get(f"/staff/escalations/{opted}")).text()
    assert "This patient texted STOP" in page and "sms/messages" not in page


async def test_the_form_posts_back_to_the_page_with_a_fixed_word(staff_client, staff_db, bridge):
    case = await sms_case(staff_db)
    reply = await staff_client.post(f"{API}/{case}/sms/messages", data={"text": "Hello", "csrf_token": staff_client.csrf},
                                    allow_redirects=False)
    assert reply.status == 303 and reply.headers["Location"] == f"/staff/escalations/{case}?sms=sent#sms"
    page = await (await staff_client.get(reply.headers["Location"])).text()
    assert "Text queued for the patient" in page and "Hello" in page
