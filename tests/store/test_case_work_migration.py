"""Migration 0004 (case work) on SQLite: resolved cases get a date, episodes stay one open per reason."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command

from bot.core.store.migrate import alembic_config, upgrade

INSERT = (
    "INSERT INTO escalations (id, created_at, updated_at, channel, sender_id, reason, trigger, priority, status,"
    " transcript, occurrences) VALUES (?, '2026-03-02 09:00:00', '2026-03-02 10:00:00', 'rest', 'c1', 'emergency',"
    " '{}', 'urgent', ?, '[]', 1)"
)


def test_upgrade_to_0004_dates_resolved_cases_and_keeps_the_open_episode_index(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url, "0003")
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute(INSERT, ("e1", "resolved"))

    upgrade(url, "0004")

    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT resolved_at, attempts, outcome, assignee_id FROM escalations").fetchall() == [
            ("2026-03-02 10:00:00", 0, None, None)
        ]
        db.execute(INSERT, ("e2", "new"))  # a new episode after the resolved one is allowed
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(INSERT, ("e3", "in_progress"))  # but only one open episode per conversation and reason
        indexes = {row[1] for row in db.execute("PRAGMA index_list('escalations')")}
    assert {"ix_escalations_queue", "ix_escalations_assignee_id", "ix_escalations_created_at"} <= indexes


def test_downgrade_from_0004_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url, "0004")
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute(INSERT, ("e1", "new"))

    command.downgrade(alembic_config(url), "0003")
    with sqlite3.connect(tmp_path / "store.db") as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info('escalations')")}
        assert "assignee_id" not in columns and "outcome" not in columns
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(INSERT, ("e2", "new"))
    upgrade(url, "0004")
