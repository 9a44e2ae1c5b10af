"""Notifier.run_once against a real SMTP server and a real webhook receiver on loopback."""

from __future__ import annotations

import dataclasses
import hmac
import json
from datetime import timedelta

from sqlalchemy import select, update

from bot.core.settings import Settings
from bot.core.store.models import AuditEvent, AuditKind, Escalation, OutboxMessage, OutboxStatus, Priority, Reason, utcnow
from bot.core.store.repository import EscalationInput
from bot.dashboard.notify.worker import MAX_ATTEMPTS, SIGNATURE_HEADER, Notifier, escalation_url, sign
from bot.launch import free_port
from tests.notify.conftest import PUBLIC_WEB_URL, WEBHOOK_SECRET

PATIENT_TEXT = "My arm went numb after the needle in my shoulder"
PATIENT_NAME = "Ana Quetzal"
PATIENT_PHONE = "+447911123456"


def escalation_input(reason: Reason = Reason.adverse_event, priority: Priority = Priority.high) -> EscalationInput:
    return EscalationInput(
        sender_id="conv-1",
        channel="socketio",
        reason=reason,
        priority=priority,
        trigger={"matched_terms": ["numb"], "text_excerpt": PATIENT_TEXT},
        transcript=[{"role": "user", "text": PATIENT_TEXT}],
        contact_name=PATIENT_NAME,
        contact_method="phone",
        contact_detail=PATIENT_PHONE,
        consent_given=True,
    )


async def outbox(sessions, transport: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if transport:
        query = query.where(OutboxMessage.transport == transport)
    async with sessions() as session:
        return list((await session.execute(query)).scalars())


async def make_due(sessions) -> None:
    """Move every pending message's next attempt into the past."""
    async with sessions() as session:
        async with session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.pending)
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )


async def audit(sessions, kind: AuditKind) -> list[AuditEvent]:
    async with sessions() as session:
        return list((await session.execute(select(AuditEvent).where(AuditEvent.kind == kind))).scalars())


def subject(email) -> str:
    """The Subject header as a mail client shows it."""
    return email["Subject"]


def body_of(email) -> str:
    return email.get_payload(decode=True).decode(email.get_content_charset() or "utf-8")


async def test_run_once_delivers_an_email_to_the_smtp_server(service, notifier, smtp):
    outcome = await service.escalate(escalation_input())

    await notifier.run_once()

    [email] = smtp.messages
    assert email["To"] == "team@clinic.example"
    assert email["From"] == "assistant@clinic.example"
    assert email["Subject"] == f"adverse event escalation {outcome.escalation_id[:8]} (Riverside Physiotherapy)"
    assert outcome.escalation_id in body_of(email)


async def test_a_non_emergency_email_is_not_marked_urgent(service, notifier, smtp):
    await service.escalate(escalation_input(Reason.human_request, Priority.normal))

    await notifier.run_once()

    [email] = smtp.messages
    assert "[URGENT]" not in subject(email)
    assert email["X-Priority"] is None


async def test_an_emergency_email_subject_starts_with_urgent(service, notifier, smtp):
    await service.escalate(escalation_input(Reason.emergency, Priority.urgent))

    await notifier.run_once()

    [email] = smtp.messages
    assert subject(email).startswith("[URGENT] ")
    assert email["X-Priority"] == "1"


async def test_the_email_carries_no_patient_text_name_or_contact_detail(service, notifier, smtp):
    await service.escalate(escalation_input(Reason.emergency, Priority.urgent))

    await notifier.run_once()

    [email] = smtp.messages
    whole = email.as_string()
    for secret in (PATIENT_TEXT, "numb", PATIENT_NAME, "Quetzal", PATIENT_PHONE, "7911123456", "conv-1"):
        assert secret not in whole


async def test_run_once_posts_the_webhook_with_a_valid_hmac_signature(service, notifier, webhook):
    outcome = await service.escalate(escalation_input())

    await notifier.run_once()

    [payload] = webhook.received
    assert payload["escalation_id"] == outcome.escalation_id
    assert payload["event"] == "escalation.created"
    headers = {k.lower(): v for k, v in webhook.headers[0].items()}
    body = json.dumps(payload, sort_keys=True).encode()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER.lower()], sign(WEBHOOK_SECRET, body))
    assert not hmac.compare_digest(headers[SIGNATURE_HEADER.lower()], sign("another-secret", body))


async def test_the_webhook_carries_no_patient_text_name_or_contact_detail(service, notifier, webhook):
    await service.escalate(escalation_input(Reason.emergency, Priority.urgent))

    await notifier.run_once()

    serialised = json.dumps(webhook.received)
    for secret in (PATIENT_TEXT, "numb", PATIENT_NAME, PATIENT_PHONE, "conv-1"):
        assert secret not in serialised


async def test_the_email_links_to_the_escalations_page_on_the_dashboard(service, notifier, smtp):
    outcome = await service.escalate(escalation_input(Reason.emergency, Priority.urgent))

    await notifier.run_once()

    [email] = smtp.messages
    assert f"{PUBLIC_WEB_URL}/staff/escalations/{outcome.escalation_id}" in body_of(email).splitlines()


async def test_the_webhook_carries_the_absolute_link_inside_the_signed_body(service, notifier, webhook):
    outcome = await service.escalate(escalation_input())

    await notifier.run_once()

    [payload] = webhook.received
    assert payload["url"] == f"{PUBLIC_WEB_URL}/staff/escalations/{outcome.escalation_id}"
    headers = {k.lower(): v for k, v in webhook.headers[0].items()}
    assert hmac.compare_digest(headers[SIGNATURE_HEADER.lower()],
                               sign(WEBHOOK_SECRET, json.dumps(payload, sort_keys=True).encode()))


async def test_without_a_public_address_nothing_links_anywhere(settings, clinic, sessions, service, http, smtp,
                                                               webhook):
    notifier = Notifier(dataclasses.replace(settings, public_web_url=""), clinic, sessions, service, http)
    outcome = await service.escalate(escalation_input())

    await notifier.run_once()

    [email] = smtp.messages
    assert "http" not in body_of(email) and outcome.escalation_id in body_of(email)
    assert "url" not in webhook.received[0]


def test_the_link_is_absolute_and_holds_only_the_escalation_id():
    settings = dataclasses.replace(Settings(), public_web_url="https://clinic.example/assistant/")

    assert escalation_url(settings, "0b9a") == "https://clinic.example/assistant/staff/escalations/0b9a"
    assert escalation_url(settings, "../x?y") == "https://clinic.example/assistant/staff/escalations/..%2Fx%3Fy"
    assert escalation_url(dataclasses.replace(settings, public_web_url=""), "0b9a") is None


async def test_a_webhook_without_a_secret_is_sent_unsigned(settings, clinic, sessions, service, http, webhook):
    notifier = Notifier(dataclasses.replace(settings, notify_webhook_secret=""), clinic, sessions, service, http)
    await service.escalate(escalation_input())

    await notifier.run_once()

    assert len(webhook.received) == 1
    assert SIGNATURE_HEADER.lower() not in {k.lower() for k in webhook.headers[0]}


async def test_delivered_messages_are_marked_sent_and_audited(service, notifier, sessions):
    await service.escalate(escalation_input())

    sent = await notifier.run_once()

    assert sent == 2
    for message in await outbox(sessions):
        assert message.status == OutboxStatus.sent
        assert message.attempts == 1
        assert message.sent_at is not None and message.sent_at.utcoffset() == timedelta(0)
    assert sorted(e.detail["transport"] for e in await audit(sessions, AuditKind.notification_sent)) == [
        "email",
        "webhook",
    ]


async def test_a_sent_message_is_not_delivered_twice(service, notifier, smtp, webhook):
    await service.escalate(escalation_input())
    await notifier.run_once()

    assert await notifier.run_once() == 0

    assert len(smtp.messages) == 1 and len(webhook.received) == 1


async def test_a_webhook_answering_500_leaves_the_message_pending(service, notifier, webhook, sessions):
    webhook.status = 500
    await service.escalate(escalation_input())
    before = utcnow()

    await notifier.run_once()

    [message] = await outbox(sessions, "webhook")
    assert message.status == OutboxStatus.pending
    assert message.attempts == 1
    assert message.next_attempt_at > before
    assert "500" in message.last_error
    assert message.sent_at is None


async def test_a_failed_message_waits_for_its_next_attempt(service, notifier, webhook):
    webhook.status = 500
    await service.escalate(escalation_input())
    await notifier.run_once()

    await notifier.run_once()

    assert len(webhook.received) == 1


async def test_a_later_run_after_the_receiver_recovers_delivers_the_message(service, notifier, webhook, sessions):
    webhook.status = 500
    await service.escalate(escalation_input())
    await notifier.run_once()
    webhook.status = 200
    await make_due(sessions)

    sent = await notifier.run_once()

    assert sent == 1
    [message] = await outbox(sessions, "webhook")
    assert message.status == OutboxStatus.sent
    assert message.attempts == 2
    assert len(webhook.received) == 2


async def test_an_unreachable_webhook_leaves_the_message_pending(settings, clinic, sessions, service, http):
    dead_url = f"http://127.0.0.1:{free_port()}/hook"
    notifier = Notifier(dataclasses.replace(settings, notify_webhook_url=dead_url), clinic, sessions, service, http)
    await service.escalate(escalation_input())

    await notifier.run_once()

    [message] = await outbox(sessions, "webhook")
    assert message.status == OutboxStatus.pending
    assert message.attempts == 1
    assert message.last_error


async def test_an_unreachable_smtp_server_leaves_the_email_pending(settings, clinic, sessions, service, http):
    notifier = Notifier(dataclasses.replace(settings, smtp_port=free_port()), clinic, sessions, service, http)
    await service.escalate(escalation_input())

    await notifier.run_once()

    [message] = await outbox(sessions, "email")
    assert message.status == OutboxStatus.pending
    assert message.attempts == 1
    assert message.last_error


async def test_after_max_attempts_the_message_is_dead_and_audited(service, notifier, webhook, sessions):
    webhook.status = 500
    outcome = await service.escalate(escalation_input())

    for _ in range(MAX_ATTEMPTS):
        await make_due(sessions)
        await notifier.run_once()

    [message] = await outbox(sessions, "webhook")
    assert message.status == OutboxStatus.dead
    assert message.attempts == MAX_ATTEMPTS
    [failed] = await audit(sessions, AuditKind.notification_failed)
    assert failed.escalation_id == outcome.escalation_id
    assert failed.detail["transport"] == "webhook"
    assert failed.detail["attempts"] == MAX_ATTEMPTS


async def test_a_dead_message_is_not_attempted_again(service, notifier, webhook, sessions):
    webhook.status = 500
    await service.escalate(escalation_input())
    for _ in range(MAX_ATTEMPTS):
        await make_due(sessions)
        await notifier.run_once()
    webhook.status = 200

    await notifier.run_once()

    assert len(webhook.received) == MAX_ATTEMPTS


async def test_run_once_replays_the_spool(service, notifier, spool, sessions, smtp, webhook):
    spool.append(escalation_input(Reason.emergency, Priority.urgent))

    sent = await notifier.run_once()

    assert spool.pending() == 0
    async with sessions() as session:
        [record] = list((await session.execute(select(Escalation))).scalars())
    assert record.reason == Reason.emergency
    assert await audit(sessions, AuditKind.recovered_from_spool)
    assert sent == 2
    assert subject(smtp.messages[0]).startswith("[URGENT] ")
    assert webhook.received[0]["escalation_id"] == record.id


async def test_an_unreadable_spool_line_does_not_stop_delivery(service, notifier, spool, smtp, webhook):
    await service.escalate(escalation_input())
    spool.directory.mkdir(parents=True, exist_ok=True)
    spool.path.write_text("not json\n", encoding="utf-8")

    sent = await notifier.run_once()

    assert sent == 2
    assert len(smtp.messages) == 1 and len(webhook.received) == 1
