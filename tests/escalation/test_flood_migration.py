"""Migration 0007 (flood guard) on SQLite: existing cases are kept, unflagged, and it downgrades cleanly."""

from __future__ import annotations

import sqlite3

from alembic import command

from bot.core.store.migrate import alembic_config, upgrade

INSERT = (
    "INSERT INTO escalations (id, created_at, updated_at, channel, sender_id, reason, trigger, priority, status,"
    " transcript, occurrences) VALUES (?, '2026-03-02 09:00:00', '2026-03-02 10:00:00', 'rest', ?, 'emergency',"
    " '{}', 'urgent', 'new', '[]', 1)"
)


def test_upgrade_to_0007_keeps_existing_cases_as_ordinary_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url, "0006")
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute(INSERT, ("e1", "c1"))

    upgrade(url, "0007")

    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT client_key, possible_abuse FROM escalations").fetchall() == [(None, 0)]
        indexes = {row[1] for row in db.execute("PRAGMA index_list('escalations')")}
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "ix_escalations_client_key" in indexes and "uq_escalations_open_sender_reason" in indexes
    assert "escalation_sources" in tables


def test_downgrade_from_0007_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url, "0007")
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute(INSERT, ("e1", "c1"))

    command.downgrade(alembic_config(url), "0006")
    with sqlite3.connect(tmp_path / "store.db") as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info('escalations')")}
        assert "client_key" not in columns and "possible_abuse" not in columns
        assert db.execute("SELECT id FROM escalations").fetchall() == [("e1",)]
    upgrade(url, "0007")
