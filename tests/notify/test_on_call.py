"""The on-call route on a real store: texts queued in the SMS outbox, emails sent, rounds audited.

The notifier's on-call pass (bot/core/escalation/on_call.py) runs against a migrated SQLite
store and a real SMTP server on loopback; the escalations are stored by the escalation
service as the action server stores them. The clock of each pass is given, so re-alerts are
tested without waiting. Whether the route counts as "alerted" is checked with the urgent
alert route itself (bot/core/escalation/alerting.py).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.core.clinic import Clinic
from bot.core.escalation import on_call
from bot.core.escalation.alerting import Route, UrgentAlertRoute
from bot.core.escalation.service import on_call_channels
from bot.core.store.models import (
    AuditEvent, AuditKind, Escalation, OutboxMessage, Priority, Reason, SmsContact, SmsOutbound, SmsOutboundStatus,
    Status, utcnow,
)
from bot.dashboard.notify.worker import Notifier
from tests.notify.conftest import PUBLIC_WEB_URL
from tests.notify.test_worker import PATIENT_NAME, PATIENT_PHONE, PATIENT_TEXT, body_of, escalation_input

DUTY = "+447700900123"
LEAD_PHONE = "+447700900456"
LEAD_EMAIL = "lead@clinic.example"
ON_CALL = {
    "realert_minutes": 10,
    "contacts": [
        {"name": "Duty physio", "phone": "07700 900123"},
        {"name": "Clinic lead", "phone": LEAD_PHONE, "email": LEAD_EMAIL},
    ],
}
LONDON = ZoneInfo("Europe/London")
WEEKDAYS = {day: ["08:00", "19:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def twilio_settings(settings):
    return dataclasses.replace(
        settings, twilio_account_sid="AC" + "0" * 32, twilio_auth_token="token", twilio_from_number="+447700900000",
        twilio_webhook_url="https://assistant.clinic.example/webhooks/twilio/webhook",
    )


@pytest.fixture
def on_call_clinic(clinic) -> Clinic:
    return dataclasses.replace(clinic, on_call=ON_CALL, timezone="Europe/London", opening_hours=WEEKDAYS)


@pytest.fixture
def notifier(twilio_settings, on_call_clinic, sessions, service, http) -> Notifier:
    return Notifier(twilio_settings, on_call_clinic, sessions, service, http)


async def texts(sessions) -> list[tuple[str, str, str]]:
    """(number, body, origin) of every queued text."""
    async with sessions() as session:
        query = select(SmsContact.address, SmsOutbound.body, SmsOutbound.origin).join(
            SmsContact, SmsContact.id == SmsOutbound.contact_id).order_by(SmsOutbound.id)
        return [tuple(row) for row in (await session.execute(query)).all()]


async def rounds(sessions, escalation_id: str) -> list[dict]:
    async with sessions() as session:
        query = select(AuditEvent).where(
            AuditEvent.kind == AuditKind.on_call_alerted, AuditEvent.escalation_id == escalation_id
        ).order_by(AuditEvent.id)
        return [event.detail for event in (await session.execute(query)).scalars()]


async def urgent_case(service) -> str:
    outcome = await service.escalate(escalation_input(Reason.emergency, Priority.urgent))
    assert outcome.stored
    return outcome.escalation_id


async def test_an_urgent_case_texts_the_first_contact_through_the_sms_outbox_and_is_audited(
    service, notifier, sessions
):
    case = await urgent_case(service)
    await service.escalate(dataclasses.replace(escalation_input(Reason.human_request, Priority.normal),
                                               sender_id="conv-2"))

    sent = await notifier.on_call.run_once(utcnow())

    assert [(alert.escalation_id, alert.round) for alert in sent] == [(case, 0)]
    [(number, body, origin)] = await texts(sessions)
    assert (number, origin) == (DUTY, on_call.SMS_ORIGIN)
    assert case[:8] in body and f"{PUBLIC_WEB_URL}/staff/escalations/{case}" in body
    for secret in (PATIENT_TEXT, "numb", PATIENT_NAME, PATIENT_PHONE, "conv-1"):
        assert secret not in body
    assert await rounds(sessions, case) == [{"round": 0, "contacts": [{"name": "Duty physio", "via": ["sms"]}]}]
    async with sessions() as session:
        [row] = (await session.execute(select(SmsOutbound))).scalars().all()
    assert row.status == SmsOutboundStatus.pending and row.escalation_id is None  # not a text to the patient


async def test_nobody_opens_it_so_the_next_contact_is_added_after_the_realert_time(
    service, notifier, sessions, smtp
):
    case = await urgent_case(service)
    start = utcnow()
    await notifier.on_call.run_once(start)

    assert await notifier.on_call.run_once(start + timedelta(minutes=9)) == []
    [again] = await notifier.on_call.run_once(start + timedelta(minutes=10))

    assert again.round == 1 and again.contacts == ("Duty physio", "Clinic lead")
    assert [number for number, _, _ in await texts(sessions)] == [DUTY, DUTY, LEAD_PHONE]
    assert "reminder" in (await texts(sessions))[-1][1]
    assert (await rounds(sessions, case))[1] == {
        "round": 1, "contacts": [{"name": "Duty physio", "via": ["sms"]}, {"name": "Clinic lead", "via": ["sms", "email"]}],
    }
    await notifier.run_once()  # the notifier sends the on-call email by SMTP
    on_call_mail = [m for m in smtp.messages if m["To"] == LEAD_EMAIL]
    assert len(on_call_mail) == 1
    assert on_call_mail[0]["Subject"].startswith(f"[URGENT] on call: case {case[:8]}")
    body = body_of(on_call_mail[0])
    assert f"{PUBLIC_WEB_URL}/staff/escalations/{case}" in body and PATIENT_TEXT not in on_call_mail[0].as_string()


@pytest.mark.parametrize("how", ["opened", "assigned", "in_progress"])
async def test_once_someone_opened_or_took_the_case_the_alerts_stop(service, notifier, sessions, how):
    case = await urgent_case(service)
    start = utcnow()
    await notifier.on_call.run_once(start)
    async with sessions() as session:
        async with session.begin():
            if how == "opened":
                assert await on_call.record_opened(session, case, "sam")
                assert not await on_call.record_opened(session, case, "kim")  # the first opening only
            else:
                values = {"assignee": "sam"} if how == "assigned" else {"status": Status.in_progress}
                await session.execute(update(Escalation).where(Escalation.id == case).values(**values))

    assert await notifier.on_call.run_once(start + timedelta(minutes=30)) == []
    assert len(await rounds(sessions, case)) == 1


async def test_without_twilio_the_route_uses_email_only_and_without_contacts_does_nothing(
    settings, on_call_clinic, clinic, sessions, service, http, smtp
):
    email_only = Notifier(settings, on_call_clinic, sessions, service, http)
    nobody = Notifier(settings, clinic, sessions, service, http)
    case = await urgent_case(service)
    assert await nobody.on_call.run_once(utcnow()) == []

    start = utcnow()
    await email_only.on_call.run_once(start)  # round 0: the duty physio has a phone only
    await email_only.on_call.run_once(start + timedelta(minutes=10))

    assert await texts(sessions) == []
    assert [r["contacts"][0]["via"] for r in await rounds(sessions, case)] == [[], []]
    async with sessions() as session:
        queued = (await session.execute(select(OutboxMessage.payload).where(
            OutboxMessage.transport == on_call.EMAIL_TRANSPORT))).scalars().all()
    assert [payload["to"] for payload in queued] == [LEAD_EMAIL]


#: Saturday 5 December 2026, 23:00 in London: closed.
CLOSED_NOW = datetime(2026, 12, 5, 23, 0, tzinfo=LONDON).astimezone(timezone.utc)


def alert_route(sessions, clinic: Clinic, settings, now=CLOSED_NOW) -> UrgentAlertRoute:
    return UrgentAlertRoute(sessions, ("email",), clinic, overdue_after=timedelta(minutes=5), clock=lambda: now,
                            on_call_channels=on_call_channels(settings))


async def test_out_of_hours_a_working_on_call_route_is_what_makes_alerted_true(
    sessions, on_call_clinic, twilio_settings, settings
):
    assert (await alert_route(sessions, on_call_clinic, twilio_settings).check()).route == Route.alerting
    no_on_call = dataclasses.replace(on_call_clinic, on_call=None)
    closed = await alert_route(sessions, no_on_call, twilio_settings).check()
    assert closed.route == Route.closed and closed.opens
    # Only phones on call and no Twilio here: nobody can be reached.
    phones_only = dataclasses.replace(on_call_clinic, on_call={"contacts": [{"name": "D", "phone": DUTY}]})
    assert (await alert_route(sessions, phones_only, settings).check()).route == Route.closed


async def test_on_call_texts_failing_or_a_stalled_notifier_make_the_route_closed_again(
    service, notifier, sessions, on_call_clinic, twilio_settings
):
    case = await urgent_case(service)
    now = utcnow()
    shut_today = dataclasses.replace(on_call_clinic, closures=[now.astimezone(LONDON).date()])
    # Nobody sent round 0 within the overdue time: the notifier that runs the schedule is not running.
    stalled = await alert_route(sessions, shut_today, twilio_settings, now=now + timedelta(minutes=6)).check()
    assert stalled.route == Route.closed and "on_call_overdue" in stalled.problems

    await notifier.on_call.run_once(now)
    working = await alert_route(sessions, shut_today, twilio_settings, now=now + timedelta(minutes=1)).check()
    assert working.route == Route.alerting
    async with sessions() as session:
        async with session.begin():
            await session.execute(update(SmsOutbound).values(status=SmsOutboundStatus.failed))
    failing = await alert_route(sessions, shut_today, twilio_settings, now=now + timedelta(minutes=1)).check()
    assert failing.route == Route.closed and "on_call_sms_failing" in failing.problems
    assert len(await rounds(sessions, case)) == 1
