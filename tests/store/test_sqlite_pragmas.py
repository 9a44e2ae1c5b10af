"""The escalation store's SQLite connections: WAL file, synchronous=NORMAL, foreign keys (issue 25)."""

from __future__ import annotations

from pathlib import Path

from bot.core.store.db import create_engine


async def test_every_connection_is_wal_with_normal_sync_and_foreign_keys(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await connection.exec_driver_sql("PRAGMA synchronous")).scalar() == 1  # NORMAL (FULL is 2)
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await engine.dispose()
