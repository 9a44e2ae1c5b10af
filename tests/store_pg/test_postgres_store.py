"""The escalation store on a real PostgreSQL server: same code, only the URL changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from bot.core.clinic import Clinic
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.settings import Settings
from bot.core.store import repository as repo
from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import alembic_config, upgrade
from bot.core.store.models import AuditEvent, AuditKind, Escalation, OutboxMessage, OutboxStatus, Priority, Reason, Status
from bot.core.store.repository import EscalationInput
from bot.dashboard.notify.worker import Notifier
from tests.support.postgres import server, sessions  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.postgres


def data(
    reason: Reason = Reason.contraindication, sender: str = "pg-1", priority: Priority = Priority.normal, **extra
) -> EscalationInput:
    extra.setdefault("transcript", [{"from": "patient", "text": "I'm pregnant"}])
    return EscalationInput(
        sender_id=sender, channel="rest", reason=reason, priority=priority,
        trigger={"matched_terms": ["pregnancy:pregnant"]}, **extra,
    )


async def test_migration_creates_the_schema_on_postgres(sessions):
    async with sessions() as session:
        tables = (await session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))).scalars().all()
    assert {"escalations", "staff_notes", "audit_events", "notification_outbox", "staff_users"} <= set(tables)


async def test_escalating_twice_updates_one_record_on_postgres(sessions, tmp_path):
    service = EscalationService(sessions, Spool(tmp_path), ["webhook"])
    first = await service.escalate(data())
    second = await service.escalate(data(contact_name="Ana", consent_given=True))
    assert first.created and not second.created and first.escalation_id == second.escalation_id
    async with sessions() as session:
        rows = (await session.execute(select(Escalation))).scalars().all()
        outbox = (await session.execute(select(OutboxMessage))).scalars().all()
    assert len(rows) == 1 and rows[0].contact_name == "Ana" and rows[0].consent_given is True
    assert rows[0].created_at.tzinfo is not None
    assert len(outbox) == 1


async def test_audit_log_is_append_only_on_postgres(sessions, tmp_path):
    await EscalationService(sessions, Spool(tmp_path), []).escalate(data(Reason.emergency))
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions() as session:
            async with session.begin():
                await session.execute(update(AuditEvent).values(actor="someone else"))


async def test_due_notifications_skip_rows_locked_by_another_worker(sessions, tmp_path):
    await EscalationService(sessions, Spool(tmp_path), ["email", "webhook"]).escalate(data())
    async with sessions() as first, sessions() as second:
        async with first.begin(), second.begin():
            taken = await repo.due_notifications(first, repo.utcnow(), limit=1)
            others = await repo.due_notifications(second, repo.utcnow(), limit=10)
    assert len(taken) == 1 and len(others) == 1
    assert taken[0].id != others[0].id


async def test_concurrent_escalations_of_one_conversation_make_one_record_on_postgres(server, tmp_path):
    """Several action-server processes (one engine each) storing the same red flag at once."""
    server.reset()
    upgrade(server.url)
    engines = [create_engine(server.url) for _ in range(6)]
    try:
        services = [EscalationService(session_factory(e), Spool(tmp_path), ["email", "webhook"]) for e in engines]
        outcomes = await asyncio.gather(
            *(service.escalate(data(Reason.emergency, priority=Priority.urgent)) for service in services * 2)
        )
        sessions = session_factory(engines[0])
        async with sessions() as session:
            [record] = (await session.execute(select(Escalation))).scalars().all()
            outbox = (await session.execute(select(OutboxMessage))).scalars().all()
    finally:
        for engine in engines:
            await engine.dispose()
    assert all(outcome.stored for outcome in outcomes)
    assert sum(outcome.created for outcome in outcomes) == 1
    assert {outcome.escalation_id for outcome in outcomes} == {record.id}
    assert record.occurrences == 12
    assert sorted(m.transport for m in outbox) == ["email", "webhook"]


async def test_a_later_episode_after_resolution_is_a_new_record_on_postgres(sessions, tmp_path):
    service = EscalationService(sessions, Spool(tmp_path), [])
    first = await service.escalate(data())
    async with sessions() as session:
        async with session.begin():
            await session.execute(update(Escalation).values(status=Status.resolved))

    second = await service.escalate(data(transcript=[{"from": "patient", "text": "a new question"}]))

    assert second.created and second.escalation_id != first.escalation_id
    async with sessions() as session:
        old = await session.get(Escalation, first.escalation_id)
    assert old.transcript == [{"from": "patient", "text": "I'm pregnant"}]


async def test_claims_are_urgent_first_and_skip_rows_claimed_elsewhere_on_postgres(sessions, tmp_path):
    service = EscalationService(sessions, Spool(tmp_path), ["webhook"])
    normal = await service.escalate(data(Reason.human_request, sender="pg-normal"))
    urgent = await service.escalate(data(Reason.emergency, sender="pg-urgent", priority=Priority.urgent))
    async with sessions() as first, sessions() as second:
        async with first.begin(), second.begin():
            [taken] = await repo.claim_notifications(first, repo.utcnow(), timedelta(minutes=1), limit=1)
            others = await repo.claim_notifications(second, repo.utcnow(), timedelta(minutes=1), limit=10)
    assert taken.escalation_id == urgent.escalation_id
    assert [m.escalation_id for m in others] == [normal.escalation_id]


async def test_no_row_lock_is_held_while_a_message_is_sent_on_postgres(sessions, tmp_path, monkeypatch):
    settings = Settings(notify_webhook_url="http://127.0.0.1:9/hook", database_url="unused")
    service = EscalationService(sessions, Spool(tmp_path), ["webhook"])
    await service.escalate(data(Reason.emergency, priority=Priority.urgent))
    clinic = Clinic(name="Clinic", phone="0", booking_url="https://clinic.example/book")
    notifier = Notifier(settings, clinic, sessions, service)
    entered, release = asyncio.Event(), asyncio.Event()

    async def blocked_webhook(payload: dict) -> None:
        entered.set()
        await release.wait()

    monkeypatch.setattr(notifier, "_send_webhook", blocked_webhook)
    sending = asyncio.create_task(notifier.run_once())
    try:
        await asyncio.wait_for(entered.wait(), 10)
        async with sessions() as session:
            async with session.begin():
                await session.execute(text("SET LOCAL lock_timeout = '2s'"))
                await session.execute(update(OutboxMessage).values(last_error="probe"))
    finally:
        release.set()
    assert await asyncio.wait_for(sending, 10) == 1
    async with sessions() as session:
        [message] = (await session.execute(select(OutboxMessage))).scalars().all()
    assert message.status == OutboxStatus.sent


async def test_delivery_figures_and_unusual_volume_on_postgres(sessions, tmp_path):
    service = EscalationService(sessions, Spool(tmp_path), ["webhook"], volume_warning_per_hour=1)
    for number in range(3):
        await service.escalate(data(Reason.emergency, sender=f"pg-{number}", priority=Priority.urgent))

    async with sessions() as session:
        figures = await repo.delivery_figures(session, repo.utcnow(), timedelta(minutes=5))
        query = select(AuditEvent).where(AuditEvent.kind == AuditKind.unusual_volume)
        events = (await session.execute(query)).scalars().all()
    assert figures.urgent_undelivered == 3
    assert figures.oldest_urgent_undelivered.tzinfo is not None
    assert figures.urgent_untold == 0  # not yet past the threshold
    assert [e.detail for e in events] == [{"created_last_hour": 2, "warning_threshold": 1}]


async def test_migration_0001_to_0002_and_back_on_postgres(server):
    server.reset()
    upgrade(server.url, "0001")
    engine = create_engine(server.url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO notification_outbox (created_at, escalation_id, transport, payload, status, attempts,"
                " next_attempt_at) VALUES (now(), 'e1', 'email', '{\"priority\": \"urgent\"}', 'pending', 0, now())"
            ))
        await asyncio.to_thread(upgrade, server.url)
        async with engine.connect() as connection:
            ranks = (await connection.execute(text("SELECT priority_rank FROM notification_outbox"))).scalars().all()
            indexes = (await connection.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_escalations_open_sender_reason'"
            ))).scalars().all()
        assert ranks == [0]
        assert len(indexes) == 1 and "WHERE" in indexes[0] and "resolved" in indexes[0]
        await engine.dispose()
        await asyncio.to_thread(command.downgrade, alembic_config(server.url), "0001")
        await asyncio.to_thread(upgrade, server.url)
    finally:
        await engine.dispose()
