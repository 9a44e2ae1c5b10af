"""Migration 0008: the audit log found by conversation, and the contact_form_abandoned entry it serves."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from sqlalchemy import select

from bot.core.store import repository as repo
from bot.core.store.migrate import alembic_config, upgrade
from bot.core.store.models import AuditEvent, AuditKind

INSERT = (
    "INSERT INTO audit_events (created_at, kind, escalation_id, sender_id, actor, detail)"
    " VALUES ('2026-12-01 09:00:00', ?, NULL, 'web-1', 'assistant', '{}')"
)


def indexes(path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute("PRAGMA index_list('audit_events')")}


def test_upgrade_to_0008_indexes_the_conversation_and_keeps_the_log(tmp_path):
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0007")
    with sqlite3.connect(path) as db:
        db.execute(INSERT, ("consent_declined",))
    assert "ix_audit_events_sender_id" not in indexes(path)

    upgrade(url, "0008")

    assert "ix_audit_events_sender_id" in indexes(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT kind, sender_id FROM audit_events").fetchall() == [("consent_declined", "web-1")]
        db.execute(INSERT, ("contact_form_abandoned",))
        plan = " ".join(str(row) for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM audit_events WHERE sender_id = 'web-1'"))
        assert "ix_audit_events_sender_id" in plan
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_events SET actor = 'someone'")  # still append-only after the migration


def test_downgrade_from_0008_and_upgrade_again(tmp_path):
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0008")
    command.downgrade(alembic_config(url), "0007")
    assert "ix_audit_events_sender_id" not in indexes(path)
    upgrade(url, "0008")
    assert "ix_audit_events_sender_id" in indexes(path)


async def test_an_abandoned_form_entry_is_stored_and_read_back_by_conversation(sessions):
    async with sessions() as session, session.begin():
        await repo.add_audit(
            session, AuditKind.contact_form_abandoned, sender_id="web-1",
            detail={"stage": "form", "reason": "human_request", "asked_for": "contact_method", "ended_by": "new_session"},
        )
    async with sessions() as session:
        [entry] = (await session.execute(select(AuditEvent).where(AuditEvent.sender_id == "web-1"))).scalars().all()
    assert entry.kind is AuditKind.contact_form_abandoned
    assert entry.escalation_id is None and entry.detail["asked_for"] == "contact_method"
