"""EscalationService: one transaction for escalation, audit events and outbox; the spool when the store is down."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select, update

from bot.core.escalation.service import EscalationService, notification_payload, transports
from bot.core.escalation.spool import Spool
from bot.core.settings import Settings
from bot.core.store.models import AuditEvent, AuditKind, Escalation, OutboxMessage, Priority, Reason, Status
from bot.core.store.repository import EscalationInput

from tests.escalation.conftest import TRANSPORTS

PATIENT_TEXT = "I feel dizzy and my chest hurts after the needling on my neck"
PATIENT_NAME = "Ana Quetzal"
PATIENT_PHONE = "+447911123456"


def escalation_input(
    sender_id: str = "conv-1",
    reason: Reason = Reason.adverse_event,
    priority: Priority = Priority.high,
    consent: bool | None = None,
    **extra,
) -> EscalationInput:
    return EscalationInput(
        sender_id=sender_id,
        channel="socketio",
        reason=reason,
        priority=priority,
        trigger={"matched_terms": ["chest pain"], "text_excerpt": PATIENT_TEXT},
        transcript=[{"role": "user", "text": PATIENT_TEXT}, {"role": "bot", "text": "Please call 999."}],
        consent_given=consent,
        **extra,
    )


def with_contact(**kwargs) -> EscalationInput:
    return escalation_input(
        contact_name=PATIENT_NAME, contact_method="phone", contact_detail=PATIENT_PHONE, consent=True, **kwargs
    )


async def rows(sessions, model) -> list:
    async with sessions() as session:
        return list((await session.execute(select(model).order_by(model.id))).scalars())


async def audit_kinds(sessions) -> list[AuditKind]:
    return [event.kind for event in await rows(sessions, AuditEvent)]


async def test_escalate_commits_the_escalation(service, sessions):
    outcome = await service.escalate(escalation_input())

    assert outcome.stored is True and outcome.created is True and outcome.spooled is False
    [record] = await rows(sessions, Escalation)
    assert record.id == outcome.escalation_id
    assert record.reason == Reason.adverse_event
    assert record.transcript[0]["text"] == PATIENT_TEXT


async def test_escalate_records_escalation_created_in_the_audit_log(service, sessions):
    outcome = await service.escalate(escalation_input())

    [event] = await rows(sessions, AuditEvent)
    assert event.kind == AuditKind.escalation_created
    assert event.escalation_id == outcome.escalation_id
    assert event.sender_id == "conv-1"
    assert event.detail["reason"] == "adverse_event"


async def test_an_emergency_also_records_red_flag_triggered(service, sessions):
    await service.escalate(escalation_input(reason=Reason.emergency, priority=Priority.urgent))

    assert await audit_kinds(sessions) == [AuditKind.escalation_created, AuditKind.red_flag_triggered]


async def test_consent_records_consent_given(service, sessions):
    await service.escalate(with_contact())

    kinds = await audit_kinds(sessions)
    assert kinds == [AuditKind.escalation_created, AuditKind.consent_given]
    consent = (await rows(sessions, AuditEvent))[1]
    assert consent.detail == {"contact_method": "phone"}


async def test_escalate_queues_one_notification_per_configured_transport(service, sessions):
    outcome = await service.escalate(escalation_input())

    outbox = await rows(sessions, OutboxMessage)
    assert sorted(m.transport for m in outbox) == sorted(TRANSPORTS)
    assert {m.escalation_id for m in outbox} == {outcome.escalation_id}
    assert all(m.payload["event"] == "escalation.created" for m in outbox)


async def test_escalate_without_transports_queues_nothing(sessions, spool):
    service = EscalationService(sessions, spool, [])

    outcome = await service.escalate(escalation_input())

    assert outcome.stored is True
    assert await rows(sessions, OutboxMessage) == []


async def test_a_second_escalation_for_the_same_reason_updates_the_record(service, sessions):
    first = await service.escalate(escalation_input())

    second = await service.escalate(escalation_input())

    assert second.stored is True and second.created is False
    assert second.escalation_id == first.escalation_id
    assert len(await rows(sessions, Escalation)) == 1
    assert (await audit_kinds(sessions))[-1] == AuditKind.escalation_updated


async def test_a_second_non_emergency_escalation_queues_no_new_notification(service, sessions):
    await service.escalate(escalation_input())

    await service.escalate(escalation_input())

    assert len(await rows(sessions, OutboxMessage)) == len(TRANSPORTS)


async def test_a_repeated_emergency_keeps_one_urgent_escalation_and_one_notification(service, sessions):
    for _ in range(3):
        await service.escalate(escalation_input(reason=Reason.emergency, priority=Priority.urgent))

    [record] = await rows(sessions, Escalation)
    assert record.occurrences == 3
    assert len(record.trigger["history"]) == 2
    outbox = await rows(sessions, OutboxMessage)
    assert sorted(m.transport for m in outbox) == sorted(TRANSPORTS)
    assert all(m.payload["urgent"] is True and m.payload["event"] == "escalation.created" for m in outbox)
    assert (await audit_kinds(sessions)).count(AuditKind.red_flag_triggered) == 3


async def test_an_escalation_that_becomes_urgent_notifies_staff_once_more(service, sessions):
    await service.escalate(escalation_input(reason=Reason.adverse_event, priority=Priority.high))

    await service.escalate(escalation_input(reason=Reason.adverse_event, priority=Priority.urgent))
    await service.escalate(escalation_input(reason=Reason.adverse_event, priority=Priority.urgent))

    outbox = await rows(sessions, OutboxMessage)
    assert [m.payload["event"] for m in outbox] == ["escalation.created"] * 2 + ["escalation.updated"] * 2
    assert [m.priority_rank for m in outbox] == [1, 1, 0, 0]


async def test_a_red_flag_after_staff_resolved_the_first_is_a_new_urgent_escalation(service, sessions):
    first = await service.escalate(escalation_input(reason=Reason.emergency, priority=Priority.urgent))
    async with sessions() as session:
        async with session.begin():
            await session.execute(
                update(Escalation).where(Escalation.id == first.escalation_id).values(status=Status.resolved)
            )

    second = await service.escalate(escalation_input(reason=Reason.emergency, priority=Priority.urgent))

    assert second.created is True and second.escalation_id != first.escalation_id
    assert len(await rows(sessions, OutboxMessage)) == 2 * len(TRANSPORTS)


async def test_a_different_reason_in_the_same_conversation_is_a_new_escalation(service, sessions):
    first = await service.escalate(escalation_input(reason=Reason.adverse_event))

    second = await service.escalate(escalation_input(reason=Reason.human_request, priority=Priority.normal))

    assert second.created is True and second.escalation_id != first.escalation_id
    assert len(await rows(sessions, OutboxMessage)) == 2 * len(TRANSPORTS)


async def test_notification_payloads_carry_no_patient_text_name_or_contact_detail(service, sessions):
    await service.escalate(with_contact(reason=Reason.emergency, priority=Priority.urgent))
    await service.escalate(with_contact(reason=Reason.emergency, priority=Priority.urgent))

    outbox = await rows(sessions, OutboxMessage)
    assert outbox
    for message in outbox:
        serialised = json.dumps(message.payload)
        for secret in (PATIENT_TEXT, "dizzy", "chest", PATIENT_NAME, "Ana", PATIENT_PHONE, "7911123456", "conv-1"):
            assert secret not in serialised
        assert set(message.payload) == {"event", "escalation_id", "reason", "priority", "urgent"}


def test_notification_payload_marks_only_urgent_priority_as_urgent():
    assert notification_payload("e", Reason.emergency, Priority.urgent, True)["urgent"] is True
    assert notification_payload("e", Reason.adverse_event, Priority.high, True)["urgent"] is False


def test_transports_lists_email_only_with_both_host_and_recipient():
    assert transports(Settings(smtp_host="mail", notify_email_to="")) == []
    assert transports(Settings(smtp_host="mail", notify_email_to="team@x.example")) == ["email"]
    assert transports(Settings(smtp_host="mail", notify_email_to="t@x.example", notify_webhook_url="http://h/")) == [
        "email",
        "webhook",
    ]


def spooled_records(spool: Spool) -> list[dict]:
    return [json.loads(line) for line in spool.path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def test_with_the_database_unreachable_escalate_spools_the_escalation(down_service, spool):
    outcome = await down_service.escalate(with_contact(reason=Reason.emergency, priority=Priority.urgent))

    assert outcome.stored is False
    assert outcome.spooled is True
    assert outcome.escalation_id is None
    [record] = spooled_records(spool)
    assert record["sender_id"] == "conv-1"
    assert record["reason"] == "emergency"
    assert record["priority"] == "urgent"
    assert record["contact_detail"] == PATIENT_PHONE


async def test_with_postgres_unreachable_escalate_spools_the_escalation(unreachable_postgres_sessions, spool):
    service = EscalationService(unreachable_postgres_sessions, spool, TRANSPORTS)

    outcome = await service.escalate(escalation_input())

    assert (outcome.stored, outcome.spooled) == (False, True)
    assert spool.pending() == 1


async def test_when_the_spool_fails_too_escalate_reports_neither_stored_nor_spooled(down_sessions):
    service = EscalationService(down_sessions, Spool(Path("/proc/nope/spool")), TRANSPORTS)

    outcome = await service.escalate(escalation_input())

    assert (outcome.stored, outcome.spooled) == (False, False)


async def test_the_spool_file_is_private_to_the_owner(down_service, spool):
    await down_service.escalate(escalation_input())

    assert spool.path.stat().st_mode & 0o777 == 0o600


async def test_replay_stores_spooled_escalations_once_the_database_is_back(down_service, service, spool, sessions):
    await down_service.escalate(with_contact(reason=Reason.emergency, priority=Priority.urgent))
    await down_service.escalate(
        escalation_input(sender_id="conv-2", reason=Reason.human_request, priority=Priority.normal)
    )

    stored = await spool.replay(service.store_spooled)

    assert stored == 2
    records = {r.sender_id: r for r in await rows(sessions, Escalation)}
    assert set(records) == {"conv-1", "conv-2"}
    assert records["conv-1"].contact_detail == PATIENT_PHONE
    assert records["conv-1"].priority == Priority.urgent
    assert records["conv-1"].status == Status.new


async def test_replay_empties_the_spool(down_service, service, spool):
    await down_service.escalate(escalation_input())

    await spool.replay(service.store_spooled)

    assert spool.pending() == 0
    assert not spool.path.with_suffix(".replaying").exists()


async def test_replayed_escalations_are_audited_as_recovered_and_notify_staff(down_service, service, spool, sessions):
    await down_service.escalate(escalation_input(reason=Reason.emergency, priority=Priority.urgent))

    await spool.replay(service.store_spooled)

    kinds = await audit_kinds(sessions)
    assert AuditKind.recovered_from_spool in kinds
    assert AuditKind.red_flag_triggered in kinds
    assert len(await rows(sessions, OutboxMessage)) == len(TRANSPORTS)


async def test_replay_keeps_the_items_that_fail(down_service, service, spool, sessions):
    await down_service.escalate(escalation_input(sender_id="conv-ok"))
    await down_service.escalate(escalation_input(sender_id="conv-bad"))

    async def store(item: EscalationInput) -> None:
        if item.sender_id == "conv-bad":
            raise ConnectionError("still down for this one")
        await service.store_spooled(item)

    stored = await spool.replay(store)

    assert stored == 1
    assert [r["sender_id"] for r in spooled_records(spool)] == ["conv-bad"]
    assert [r.sender_id for r in await rows(sessions, Escalation)] == ["conv-ok"]


async def test_replay_with_the_database_still_down_keeps_everything(down_service, spool):
    await down_service.escalate(escalation_input(sender_id="conv-1"))
    await down_service.escalate(escalation_input(sender_id="conv-2"))

    stored = await spool.replay(down_service.store_spooled)

    assert stored == 0
    assert [r["sender_id"] for r in spooled_records(spool)] == ["conv-1", "conv-2"]


async def test_replay_of_an_empty_spool_stores_nothing(service, spool):
    assert await spool.replay(service.store_spooled) == 0


async def test_consent_declined_writes_an_audit_event(service, sessions):
    assert await service.consent_declined("conv-1", "adverse_event") is True

    [event] = await rows(sessions, AuditEvent)
    assert event.kind == AuditKind.consent_declined
    assert event.sender_id == "conv-1"
    assert event.detail == {"reason": "adverse_event"}


async def test_consent_declined_returns_false_when_the_database_is_down(down_service):
    assert await down_service.consent_declined("conv-1", "adverse_event") is False


async def test_replay_survives_an_unreadable_line_and_stores_the_rest(down_service, service, spool, sessions):
    spool.directory.mkdir(parents=True, exist_ok=True)
    # e.g. a write cut short by a full disk
    spool.path.write_text('{"sender_id": "conv-torn", "reas\n', encoding="utf-8")
    await down_service.escalate(escalation_input(sender_id="conv-ok"))

    stored = await spool.replay(service.store_spooled)

    assert stored == 1
    assert [r.sender_id for r in await rows(sessions, Escalation)] == ["conv-ok"]
