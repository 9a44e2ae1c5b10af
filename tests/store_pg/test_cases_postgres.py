"""Case work, the conversation reader and migration 0004 on a real PostgreSQL server.

Every test of tests/staff/test_cases.py runs here again (imported below): only the
``sessions`` fixture differs, so filters, search (JSON cast to text, LIKE with an
escape character, Unicode case folding), queue order, counts and the conditional
updates of the actions are checked on both databases.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import text

from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import alembic_config, upgrade
from bot.dashboard.staff.conversation import TrackerReader
from tests.staff.test_cases import *  # noqa: F401,F403 - the same tests, on PostgreSQL
from tests.support import tracker
from tests.support.postgres import server, sessions  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.postgres


async def test_the_conversation_reader_reads_rasas_events_table_on_postgres(server):
    server.reset()
    tracker.create_events_table(server.url)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc).timestamp()
    tracker.append(server.url, "conv-pg", [
        tracker.user("I'm pregnant", start, safety={"matched_terms": ["pregnancy:pregnant"]}),
        tracker.bot("A physio will check.", start + 1),
        tracker.event("pause", start + 2),
        tracker.bot("Hi, Sam here.", start + 3, metadata={"staff": {"name": "Sam"}}),
    ])
    reader = TrackerReader(server.url)
    try:
        found = await reader.conversation(
            "conv-pg", escalated_at=datetime.fromtimestamp(start + 1.5, tz=timezone.utc),
            trigger={"message": "I'm pregnant", "at": datetime.fromtimestamp(start, tz=timezone.utc).isoformat()},
        )
        latest = await reader.latest_patient_messages(["conv-pg"])
    finally:
        await reader.close()

    assert [(turn.kind, turn.text) for turn in found.turns] == [
        ("patient", "I'm pregnant"), ("assistant", "A physio will check."), ("paused", None), ("staff", "Hi, Sam here."),
    ]
    assert found.turns[0].trigger and found.turns[0].safety == {"matched_terms": ["pregnancy:pregnant"]}
    assert [turn.after_escalation for turn in found.turns] == [False, False, True, True]
    assert latest["conv-pg"].event_id == found.turns[0].event_id


async def test_a_database_without_rasas_table_reads_as_unavailable_on_postgres(server):
    server.reset()
    reader = TrackerReader(server.url)
    try:
        assert not (await reader.conversation("conv-pg")).available
    finally:
        await reader.close()


async def test_migration_0004_keeps_episodes_and_dates_resolved_cases_on_postgres(server):
    server.reset()
    await asyncio.to_thread(upgrade, server.url, "0003")
    engine = create_engine(server.url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO escalations (id, created_at, updated_at, channel, sender_id, reason, trigger, priority,"
                " status, transcript, occurrences) VALUES ('e1', now(), '2026-03-02 10:00:00+00', 'rest', 'c1',"
                " 'emergency', '{}', 'urgent', 'resolved', '[]', 1)"
            ))
        await asyncio.to_thread(upgrade, server.url)
        async with engine.connect() as connection:
            resolved_at = (await connection.execute(text("SELECT resolved_at FROM escalations"))).scalar_one()
            index = (await connection.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_escalations_open_sender_reason'"
            ))).scalar_one()
            queue_index = (await connection.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_escalations_queue'"
            ))).scalar_one()
        assert resolved_at == datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
        assert "WHERE" in index and "resolved" in index
        assert "status, priority, created_at" in queue_index
        await engine.dispose()
        await asyncio.to_thread(command.downgrade, alembic_config(server.url), "0003")
        await asyncio.to_thread(upgrade, server.url)
    finally:
        await engine.dispose()
