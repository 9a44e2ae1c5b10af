"""The Rasa process's thread pools and SQLite tracker store (bot/assistant/runtime.py, issue 25)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from bot.assistant import runtime


def test_one_setting_sizes_every_thread_pool():
    env: dict[str, str] = {"RASA_THREADS": "2"}
    assert runtime.pin_threads(env) == 2
    assert {name: env[name] for name in runtime.THREAD_VARIABLES} == dict.fromkeys(runtime.THREAD_VARIABLES, "2")


def test_one_thread_by_default_and_an_explicit_variable_wins():
    env = {"OMP_NUM_THREADS": "3"}
    assert runtime.pin_threads(env) == 1
    assert env["OMP_NUM_THREADS"] == "3" and env["TF_INTRA_OP_PARALLELISM_THREADS"] == "1"


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_wrong_thread_count_is_refused(value):
    with pytest.raises(ValueError, match="RASA_THREADS"):
        runtime.threads({"RASA_THREADS": value})


def test_a_sqlite_tracker_store_is_private_in_wal_mode_with_normal_sync(tmp_path: Path):
    database = tmp_path / "db" / "tracker.db"
    runtime.prepare_tracker_store(f"sqlite:///{database}")
    assert database.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(database) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Rasa's SQLTrackerStore makes a plain synchronous engine: its connections get NORMAL (1), not FULL (2).
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    engine.dispose()


def test_a_postgresql_tracker_store_is_left_alone(tmp_path: Path):
    runtime.prepare_tracker_store("postgresql://u:p@127.0.0.1:1/none")  # no connection is attempted
