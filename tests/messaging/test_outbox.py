"""The SMS outbox on a real SQLite store against the fake Twilio API: order, retries, rules, callbacks."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.assistant.messaging.outbox import MAX_ATTEMPTS, SmsSender
from bot.assistant.messaging.service import SmsService
from bot.assistant.messaging.texts import load_texts
from bot.assistant.messaging.twilio_api import TwilioApi
from bot.core.clinic import load_clinic
from bot.core.messaging import store
from bot.core.messaging.addresses import parse_address
from bot.core.settings import REPO_ROOT, Settings
from bot.core.store import repository as repo
from bot.core.store.models import AuditEvent, AuditKind, Priority, Reason, SmsContact, SmsOutbound, SmsOutboundStatus, utcnow
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, WHATSAPP_FROM, message_sid

ALICE = "+447700900001"
BOB = "+447700900002"
WEBHOOK = "https://assistant.clinic.example/webhooks/twilio/webhook"


@pytest.fixture
async def sender(sessions, fake_twilio):
    fake_twilio.clear()
    fake_twilio.unsubscribed.clear()
    settings = Settings(
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, twilio_from_number=FROM_NUMBER,
        twilio_whatsapp_from=WHATSAPP_FROM, twilio_webhook_url=WEBHOOK, twilio_api_base_url=fake_twilio.url,
    )
    async with aiohttp.ClientSession() as http:
        yield SmsSender(sessions, TwilioApi(settings, http), WEBHOOK)


async def contact(sessions, raw: str) -> SmsContact:
    async with sessions() as session:
        async with session.begin():
            return await store.contact_for(session, parse_address(raw), utcnow())


async def queue(sessions, who: SmsContact, *bodies: str, **kwargs) -> list[int]:
    async with sessions() as session:
        async with session.begin():
            row = await session.get(SmsContact, who.id)
            return [r.id for r in await store.queue(session, row, bodies, utcnow(), **kwargs)]


async def rows(sessions) -> list[SmsOutbound]:
    async with sessions() as session:
        return list((await session.execute(select(SmsOutbound).order_by(SmsOutbound.id))).scalars())


async def make_due(sessions) -> None:
    async with sessions() as session:
        async with session.begin():
            await session.execute(update(SmsOutbound).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


async def escalate(sessions, sender_id: str) -> str:
    async with sessions() as session:
        async with session.begin():
            data = repo.EscalationInput(
                sender_id=sender_id, channel="sms", reason=Reason.human_request, priority=Priority.normal,
                trigger={}, transcript=[],
            )
            return (await repo.upsert_escalation(session, data)).record.id


async def audits(sessions, kind: AuditKind) -> list[AuditEvent]:
    async with sessions() as session:
        return list((await session.execute(select(AuditEvent).where(AuditEvent.kind == kind))).scalars())


async def test_a_conversations_texts_go_out_in_order_even_when_the_first_needs_a_retry(sessions, sender, fake_twilio):
    alice, bob = await contact(sessions, ALICE), await contact(sessions, BOB)
    await queue(sessions, alice, "(1/2) first", "(2/2) second")
    await queue(sessions, bob, "for bob")
    fake_twilio.fail_next(1, status=503)

    await sender.run_once()
    assert fake_twilio.bodies(ALICE) == [] and fake_twilio.bodies(BOB) == ["for bob"]  # Alice's part 2 waits for part 1

    await make_due(sessions)
    await sender.run_once()
    assert fake_twilio.bodies(ALICE) == ["(1/2) first", "(2/2) second"]
    first = (await rows(sessions))[0]
    assert first.status == SmsOutboundStatus.sent and first.attempts == 2 and first.twilio_sid


async def test_a_text_that_keeps_failing_is_given_up_and_shows_on_the_escalation(sessions, sender, fake_twilio):
    alice = await contact(sessions, ALICE)
    escalation_id = await escalate(sessions, alice.sender_id)
    await queue(sessions, alice, "hello")
    fake_twilio.fail_next(MAX_ATTEMPTS, status=500)

    for _ in range(MAX_ATTEMPTS):
        await sender.run_once()
        await make_due(sessions)

    [row] = await rows(sessions)
    assert row.status == SmsOutboundStatus.failed and row.attempts == MAX_ATTEMPTS
    assert row.escalation_id == escalation_id
    [event] = await audits(sessions, AuditKind.sms_delivery_failed)
    assert event.escalation_id == escalation_id
    assert event.detail["reason"] == "retries_exhausted"
    assert "hello" not in str(event.detail) and ALICE not in str(event.detail)
    assert fake_twilio.sent == []


async def test_a_permanent_refusal_is_not_retried(sessions, sender, fake_twilio):
    alice = await contact(sessions, ALICE)
    await queue(sessions, alice, "hello")
    fake_twilio.fail_next(1, status=400, code=21211)

    await sender.run_once()
    await make_due(sessions)
    await sender.run_once()

    [row] = await rows(sessions)
    assert row.status == SmsOutboundStatus.failed and row.attempts == 1 and row.error_code == "21211"
    assert len(fake_twilio.requests) == 1


async def test_twilio_saying_the_number_unsubscribed_records_the_opt_out(sessions, sender, fake_twilio):
    alice = await contact(sessions, ALICE)
    fake_twilio.unsubscribed.add(ALICE)
    await queue(sessions, alice, "one")
    await queue(sessions, alice, "two")

    await sender.run_once()

    async with sessions() as session:
        assert (await session.get(SmsContact, alice.id)).opted_out_at is not None
    first, second = await rows(sessions)
    assert first.status == SmsOutboundStatus.failed and first.error_code == "21610"
    assert second.status == SmsOutboundStatus.suppressed and second.last_error == "opted_out"
    assert len(fake_twilio.requests) == 1


async def test_nothing_but_the_opt_out_confirmation_goes_to_an_opted_out_number(sessions, sender, fake_twilio):
    alice = await contact(sessions, ALICE)
    async with sessions() as session:
        async with session.begin():
            (await session.get(SmsContact, alice.id)).opted_out_at = utcnow()
    await queue(sessions, alice, "a staff reply", origin="staff", author="sam")
    await queue(sessions, alice, "you have opted out", origin="opt_out")

    await sender.run_once()

    assert fake_twilio.bodies(ALICE) == ["you have opted out"]
    staff = (await rows(sessions))[0]
    assert staff.status == SmsOutboundStatus.suppressed
    [event] = await audits(sessions, AuditKind.sms_delivery_failed)
    assert event.detail["reason"] == "opted_out" and event.detail["author"] == "sam"


async def test_whatsapp_free_text_outside_the_window_is_withheld_but_a_template_goes(sessions, sender, fake_twilio):
    patient = await contact(sessions, f"whatsapp:{ALICE}")
    async with sessions() as session:
        async with session.begin():
            (await session.get(SmsContact, patient.id)).last_inbound_at = utcnow() - timedelta(hours=25)
    await queue(sessions, patient, "free text", origin="staff", author="sam")
    await queue(sessions, patient, "template", origin="staff", author="sam", template_sid="HX" + "0" * 32)

    await sender.run_once()

    free, template = await rows(sessions)
    assert free.status == SmsOutboundStatus.suppressed and free.last_error == "whatsapp_window_closed"
    assert template.status == SmsOutboundStatus.sent
    [sent] = fake_twilio.sent
    assert sent.content_sid == "HX" + "0" * 32 and sent.body is None and sent.to == f"whatsapp:{ALICE}"


async def test_two_senders_never_send_a_text_twice(sessions, sender, fake_twilio):
    people = [await contact(sessions, f"+4477009001{i:02d}") for i in range(5)]
    for person in people:
        await queue(sessions, person, "one", "two", "three")
    other = SmsSender(sessions, sender.api, WEBHOOK)

    await asyncio.gather(sender.run_once(), other.run_once(), sender.run_once())

    assert len(fake_twilio.sent) == 15
    for person in people:
        assert fake_twilio.bodies(person.address) == ["one", "two", "three"]


async def test_a_result_after_the_lease_was_taken_over_is_not_recorded(sessions, sender, fake_twilio):
    alice = await contact(sessions, ALICE)
    await queue(sessions, alice, "hello")
    claimed = await sender._claim()
    async with sessions() as session:
        async with session.begin():
            await session.execute(update(SmsOutbound).values(claim_token="someone-else"))
    await sender._record(claimed, "SM" + "1" * 32, "queued", None)
    [row] = await rows(sessions)
    assert row.status == SmsOutboundStatus.pending and row.twilio_sid is None


async def test_delivery_callbacks_move_forward_only_and_failures_are_audited(sessions, sender, fake_twilio):
    alice = await contact(sessions, ALICE)
    escalation_id = await escalate(sessions, alice.sender_id)
    [row_id] = await queue(sessions, alice, "hello")
    await sender.run_once()
    sid = fake_twilio.sent[0].sid
    service = SmsService(sessions, load_texts(), load_clinic(REPO_ROOT / "clinic.yml"), 100)

    assert await service.record_delivery(sid, None, "delivered", None)
    assert await service.record_delivery(sid, None, "sent", None)  # late, out of order: ignored
    [row] = await rows(sessions)
    assert row.delivery_status == "delivered"
    assert await service.record_delivery(sid, row_id, "undelivered", "30003")
    [row] = await rows(sessions)
    assert row.delivery_status == "undelivered" and row.error_code == "30003"
    [event] = await audits(sessions, AuditKind.sms_delivery_failed)
    assert event.escalation_id == escalation_id and event.detail["error_code"] == "30003"
    assert not await service.record_delivery(message_sid(), None, "delivered", None)


async def test_a_message_sid_is_taken_in_once(sessions):
    alice = await contact(sessions, ALICE)
    sid = message_sid()
    async with sessions() as session:
        async with session.begin():
            assert await store.take_in(session, sid, alice.id, utcnow())
            assert not await store.take_in(session, sid, alice.id, utcnow())


async def test_counters_add_up_per_window(sessions):
    now = utcnow()
    async with sessions() as session:
        async with session.begin():
            assert await store.bump(session, "x", "k", "w1", now) == 1
            assert await store.bump(session, "x", "k", "w1", now, by=3) == 4
            assert await store.bump(session, "x", "k", "w2", now) == 1
            assert await store.count(session, "x", "k", "w1") == 4


async def test_each_address_gets_its_own_random_conversation_id(sessions):
    first = await contact(sessions, ALICE)
    again = await contact(sessions, ALICE)
    other = await contact(sessions, f"whatsapp:{ALICE}")
    assert first.sender_id == again.sender_id != other.sender_id
    assert first.sender_id.startswith("sms-") and "900001" not in first.sender_id
