"""An on-call contact texting the clinic's number back is staff acknowledging an alert, not a patient.

The SMS channel runs on a real Sanic server with the scripted agent, a migrated SQLite store and
the fake Twilio (:mod:`tests.support.sms_channel`); the on-call rounds are sent by the notifier's
:class:`bot.core.escalation.on_call.OnCallAlerts` on the same store, with the clock given, as in
tests/notify/test_on_call.py, and reach the fake through the channel's own outbox sender.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.assistant.messaging.on_call_replies import REPLY_ORIGIN
from bot.core.escalation import on_call
from bot.core.store import repository as repo
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import AuditEvent, AuditKind, Escalation, Priority, Reason, SmsOutbound, Status, utcnow
from tests.support.fake_twilio import inbound
from tests.support.sms_channel import start_sms_server, stop_sms_server

DUTY = "+447700900123"
LEAD = "+447700900456"
PATIENT = "+447700900999"
ON_CALL = {
    "realert_minutes": 10,
    "contacts": [
        {"name": "Duty physio", "phone": "07700 900123"},  # written as staff write it; matched in E.164
        {"name": "Clinic lead", "phone": LEAD},
    ],
}


@pytest.fixture
async def sms(db_url, fake_twilio):
    fake_twilio.clear()
    server, sanic_server = await start_sms_server(db_url, fake_twilio)
    server.channel.clinic = dataclasses.replace(server.channel.clinic, on_call=ON_CALL)
    yield server
    await stop_sms_server(server, sanic_server)


@pytest.fixture
async def sessions(sms):
    engine = create_engine(sms.db_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def alerts(sms, sessions) -> on_call.OnCallAlerts:
    clinic = sms.channel.clinic
    return on_call.OnCallAlerts(sessions, clinic.on_call_plan, {"sms"}, clinic.name, "https://clinic.example")


async def urgent_case(sessions, sender_id: str = "conv-urgent") -> str:
    async with sessions() as session:
        async with session.begin():
            data = repo.EscalationInput(sender_id=sender_id, channel="rest", reason=Reason.emergency,
                                        priority=Priority.urgent, trigger={}, transcript=[])
            return (await repo.upsert_escalation(session, data)).record.id


async def audit(sessions, kind: AuditKind) -> list[AuditEvent]:
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
        return list((await session.execute(query)).scalars())


async def test_an_on_call_reply_acknowledges_the_alerted_case_stops_the_rounds_and_is_answered(sms, sessions, alerts):
    case = await urgent_case(sessions)
    other = await urgent_case(sessions, "conv-other")
    start = utcnow()
    await alerts.run_once(start)  # round 0: the duty physio, about both cases
    [alert_text, _] = await sms.sent_to(DUTY, 2)
    assert case[:8] in alert_text

    status, body = await sms.text(inbound(DUTY, "ok calling her now"))

    assert status == 200 and "<Message>" not in body
    assert sms.agent.received == [] and sms.agent.parsed == []  # never read, never screened
    assert list(await sms.agent.tracker_store.keys()) == []  # no patient conversation
    acks = await audit(sessions, AuditKind.on_call_acknowledged)
    assert {(a.escalation_id, a.actor) for a in acks} == {(case, "Duty physio"), (other, "Duty physio")}
    assert all("ok calling" not in str(a.detail) for a in acks)
    texts = await sms.sent_to(DUTY, 3)
    assert len(texts) == 3
    assert texts[-1] == (f"Thanks, noted: cases {case[:8]}, {other[:8]} are marked as acknowledged by Duty physio "
                         "on the dashboard. Phone the patient from the number in the case.")
    assert sms.intro not in sms.fake.bodies(DUTY)  # no disclosure to staff
    [reply] = [row for row in await sms.rows(SmsOutbound) if row.origin == REPLY_ORIGIN]
    assert reply.escalation_id is None  # not a text in either patient's case

    # The next round would have gone out now (and widened to the lead): it does not.
    assert await alerts.run_once(start + timedelta(minutes=10)) == []
    await sms.settle()
    assert sms.fake.bodies(LEAD) == [] and len(sms.fake.bodies(DUTY)) == 3


async def test_only_the_cases_that_contact_was_alerted_about_and_still_open_are_acknowledged(sms, sessions, alerts):
    first = await urgent_case(sessions)
    start = utcnow()
    await alerts.run_once(start)
    async with sessions() as session:
        async with session.begin():
            (await session.get(Escalation, first)).status = Status.resolved
    later = await urgent_case(sessions, "conv-later")  # not alerted yet

    await sms.text(inbound(DUTY, "on it"))

    assert [a for a in await audit(sessions, AuditKind.on_call_acknowledged) if a.escalation_id] == []
    texts = await sms.sent_to(DUTY, 2)
    assert texts[-1].startswith("Thanks. There is no open urgent case you were alerted about")
    [alert] = await alerts.run_once(start + timedelta(minutes=1))  # the new case is still paged
    assert alert.escalation_id == later


async def test_a_contact_never_alerted_gets_told_nothing_is_open_and_the_text_is_on_record(sms, sessions):
    await urgent_case(sessions)  # nobody has been paged about it

    status, _ = await sms.text(inbound(LEAD, "hi, am I on call tonight?"))

    assert status == 200 and sms.agent.received == []
    [ack] = await audit(sessions, AuditKind.on_call_acknowledged)
    assert ack.escalation_id is None and ack.actor == "Clinic lead" and ack.sender_id.startswith("sms-")
    assert await sms.sent_to(LEAD, 1) == [
        "Thanks. There is no open urgent case you were alerted about; nothing to acknowledge. "
        "The dashboard shows new cases."
    ]


async def test_a_retried_webhook_acknowledges_once(sms, sessions, alerts):
    case = await urgent_case(sessions)
    await alerts.run_once(utcnow())
    message = inbound(DUTY, "ok")

    await sms.text(message)
    await sms.text(message)  # Twilio retried

    assert [a.escalation_id for a in await audit(sessions, AuditKind.on_call_acknowledged)] == [case]
    await sms.sent_to(DUTY, 2)
    await sms.settle()
    assert len(sms.fake.bodies(DUTY)) == 2


async def test_a_patient_whose_number_is_not_on_call_is_unaffected(sms, sessions, alerts):
    await urgent_case(sessions)
    await alerts.run_once(utcnow())

    await sms.text(inbound(PATIENT, "ok calling her now"))

    [message] = sms.agent.received
    assert message.text == "ok calling her now" and message.sender_id.startswith("sms-")
    assert await sms.sent_to(PATIENT, 1) == ["echo: ok calling her now"]
    assert sms.intro in sms.fake.bodies(PATIENT)
    assert await audit(sessions, AuditKind.on_call_acknowledged) == []
