"""The escalation store on a real PostgreSQL server: same code, only the URL changes."""

from __future__ import annotations

from typing import Iterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from bot.escalation.service import EscalationService
from bot.escalation.spool import Spool
from bot.store import repository as repo
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
from bot.store.models import AuditEvent, Escalation, OutboxMessage, Priority, Reason
from bot.store.repository import EscalationInput
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    pg = PostgresServer().start()
    yield pg
    pg.stop()


@pytest.fixture
async def sessions(server):
    server.reset()
    upgrade(server.url)
    engine = create_engine(server.url)
    yield session_factory(engine)
    await engine.dispose()


def data(reason: Reason = Reason.contraindication, sender: str = "pg-1", **extra) -> EscalationInput:
    return EscalationInput(
        sender_id=sender, channel="rest", reason=reason, priority=Priority.normal,
        trigger={"matched_terms": ["pregnancy:pregnant"]},
        transcript=[{"from": "patient", "text": "I'm pregnant"}], **extra,
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
