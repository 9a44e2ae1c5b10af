"""Migrations 0001 -> 0002 on SQLite, private store files, and SQL errors without parameters."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.exc import SQLAlchemyError

from bot.core.files import private_directory
from bot.core.settings import REPO_ROOT
from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import alembic_config, upgrade
from bot.core.store.models import Escalation, Priority, Reason

CANARY = "Zebulon Quartzfeather"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """A permissive umask, as a careless service manager might set it."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_upgrade_creates_the_database_and_its_folders_private(tmp_path, open_umask):
    database = tmp_path / "new" / "var" / "store.db"

    upgrade(f"sqlite:///{database}")

    assert mode(database) == 0o600
    assert mode(database.parent) == 0o700
    assert mode(database.parent.parent) == 0o700


def test_upgrade_makes_an_existing_world_readable_database_private(tmp_path, open_umask):
    database = tmp_path / "store.db"
    sqlite3.connect(database).close()
    database.chmod(0o644)

    upgrade(f"sqlite:///{database}")

    assert mode(database) == 0o600


async def test_the_write_ahead_log_and_shared_memory_files_are_private(tmp_path, open_umask):
    database = tmp_path / "store.db"
    upgrade(f"sqlite:///{database}")
    engine = create_engine(f"sqlite:///{database}")
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            async with session.begin():
                session.add(Escalation(sender_id="c", channel="rest", reason=Reason.emergency,
                                       priority=Priority.urgent, trigger={}, transcript=[]))
                await session.flush()
                # While the connection is open: the last one to close removes them.
                companions = [Path(f"{database}{suffix}") for suffix in ("-wal", "-shm")]
                assert all(path.exists() for path in companions)
                assert [mode(path) for path in companions] == [0o600, 0o600]
    finally:
        await engine.dispose()


def test_private_directory_leaves_existing_folders_alone(tmp_path, open_umask):
    tmp_path.chmod(0o755)

    private_directory(tmp_path / "a" / "b")

    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700


def test_private_directory_never_narrows_a_shared_folder(tmp_path, open_umask):
    # A SQLite file placed directly in /tmp once narrowed /tmp itself to 0700.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)

    private_directory(shared)

    assert mode(shared) == 0o1777


def test_upgrade_from_0001_keeps_rows_and_ranks_queued_urgent_messages(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url, "0001")
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute(
            "INSERT INTO escalations (id, created_at, updated_at, channel, sender_id, reason, trigger, priority,"
            " status, transcript) VALUES ('e1', '2026-01-01 10:00:00', '2026-01-01 10:00:00', 'rest', 'c1',"
            " 'emergency', '{}', 'urgent', 'resolved', '[]')"
        )
        for number, priority in ((1, "urgent"), (2, "normal")):
            db.execute(
                "INSERT INTO notification_outbox (id, created_at, escalation_id, transport, payload, status,"
                " attempts, next_attempt_at) VALUES (?, '2026-01-01 10:00:00', 'e1', 'email', ?, 'pending', 0,"
                " '2026-01-01 10:00:00')",
                (number, f'{{"priority": "{priority}", "urgent": {str(priority == "urgent").lower()}}}'),
            )

    upgrade(url)

    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT occurrences FROM escalations").fetchall() == [(1,)]
        ranks = db.execute("SELECT id, priority_rank FROM notification_outbox ORDER BY id").fetchall()
        assert ranks == [(1, 0), (2, 2)]
        # The earlier episode was resolved: the same conversation and reason may open a new one.
        db.execute(
            "INSERT INTO escalations (id, created_at, updated_at, channel, sender_id, reason, trigger, priority,"
            " status, transcript) VALUES ('e2', '2026-01-02 10:00:00', '2026-01-02 10:00:00', 'rest', 'c1',"
            " 'emergency', '{}', 'urgent', 'new', '[]')"
        )


def test_downgrade_to_0001_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)

    command.downgrade(alembic_config(url), "0001")
    upgrade(url)

    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(REVISIONS[0],)]


#: Revision ids, newest first, as the migration files are numbered ("0004_case_work.py" is "0004").
REVISIONS = sorted((path.name[:4] for path in (REPO_ROOT / "bot/core/store/migrations/versions").glob("[0-9]*.py")),
                   reverse=True)


def test_the_migration_chain_is_linear():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == [REVISIONS[0]]
    assert [rev.revision for rev in script.walk_revisions()] == REVISIONS


def test_python_m_bot_store_migrate_on_a_fresh_sqlite_file(tmp_path):
    database = tmp_path / "var" / "escalations.db"
    env = {**os.environ, "VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": f"sqlite:///{database}",
           "PYTHONPATH": str(REPO_ROOT)}

    subprocess.run([sys.executable, "-m", "bot.core.store.migrate"], cwd=REPO_ROOT, env=env, check=True,
                   capture_output=True, timeout=120)

    with sqlite3.connect(database) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(REVISIONS[0],)]
    assert mode(database) == 0o600


async def test_sql_errors_do_not_print_their_parameters(sessions):
    def record() -> Escalation:
        return Escalation(sender_id="c1", channel="rest", reason=Reason.emergency, priority=Priority.urgent,
                          trigger={}, transcript=[], contact_name=CANARY)

    async with sessions() as session:
        async with session.begin():
            session.add(record())

    with pytest.raises(SQLAlchemyError) as failure:
        async with sessions() as session:
            async with session.begin():
                session.add(record())

    assert "UNIQUE" in str(failure.value)
    assert CANARY not in str(failure.value)


async def test_a_file_that_is_not_a_database_leaves_no_connection_thread_behind(tmp_path):
    def workers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)") and t.is_alive()}

    before = workers()
    (tmp_path / "store.db").write_bytes(b"not a database " * 200)
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(SQLAlchemyError, match="not a database"):
            async with engine.connect():
                pass
    finally:
        await engine.dispose()

    for thread in workers() - before:
        thread.join(5)
    assert not workers() - before
