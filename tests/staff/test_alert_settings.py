"""Each account's dashboard alert settings (browser notification, sound): migration 0009 and accounts."""

from __future__ import annotations

import sqlite3

from alembic import command

from bot.core.store.migrate import alembic_config, upgrade
from bot.core.store.models import StaffRole
from bot.dashboard.staff import accounts

USER = ("INSERT INTO staff_users (username, display_name, role, password_hash, created_at, password_changed_at)"
        " VALUES ('rita', 'Rita', 'staff', 'x', '2026-12-01 09:00:00', '2026-12-01 09:00:00')")


def columns(path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute("PRAGMA table_info('staff_users')")}


def test_upgrade_to_0009_turns_both_alerts_on_for_existing_accounts_and_downgrade_removes_them(tmp_path):
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0008")
    with sqlite3.connect(path) as db:
        db.execute(USER)
    assert "alert_sound" not in columns(path)

    upgrade(url, "0009")

    with sqlite3.connect(path) as db:
        assert db.execute("SELECT username, alert_notifications, alert_sound FROM staff_users").fetchall() == [
            ("rita", 1, 1)]
    command.downgrade(alembic_config(url), "0008")
    assert {"alert_notifications", "alert_sound"}.isdisjoint(columns(path))
    upgrade(url, "0009")
    assert {"alert_notifications", "alert_sound"} <= columns(path)


async def test_a_new_account_is_alerted_both_ways_until_it_chooses_otherwise(sessions):
    async with sessions() as session, session.begin():
        user = await accounts.create_user(session, "rita", "a perfectly long password", role=StaffRole.staff,
                                          actor="ada")
        other = await accounts.create_user(session, "omar", "another perfectly long one", role=StaffRole.staff,
                                           actor="ada")
    async with sessions() as session:
        assert await accounts.alert_settings(session, user.id) == accounts.AlertSettings(True, True)

    async with sessions() as session, session.begin():
        await accounts.set_alert_settings(session, user.id, accounts.AlertSettings(notifications=True, sound=False))

    async with sessions() as session:
        assert await accounts.alert_settings(session, user.id) == accounts.AlertSettings(True, False)
        assert await accounts.alert_settings(session, other.id) == accounts.AlertSettings(True, True)
