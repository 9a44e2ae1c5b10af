"""An escalation service over a fresh, migrated SQLite store, and one whose store is down."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import threading

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import sessionmaker

from bot.escalation.service import EscalationService
from bot.escalation.spool import Spool
from bot.store.db import create_engine, session_factory

TRANSPORTS = ("email", "webhook")


def _aiosqlite_workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


@pytest.fixture
async def down_sessions() -> AsyncIterator[sessionmaker]:
    """Sessions on a SQLite file that can never be opened (its folder cannot be created)."""
    before = _aiosqlite_workers()
    # Not bot.store.db.create_engine: it would try (and fail) to create the folder up front.
    engine = create_async_engine("sqlite+aiosqlite:////proc/nope/x.db", future=True)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
        # aiosqlite stops the worker thread of a failed connection without waiting for it; let it
        # finish while this test's event loop is still open, or it reports "Event loop is closed".
        for thread in _aiosqlite_workers() - before:
            thread.join(5)


@pytest.fixture
async def unreachable_postgres_sessions() -> AsyncIterator[sessionmaker]:
    """Sessions on a PostgreSQL URL whose port nothing listens on."""
    engine = create_engine("postgresql+asyncpg://u:p@127.0.0.1:1/db")
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


@pytest.fixture
def service(sessions: sessionmaker, spool: Spool) -> EscalationService:
    return EscalationService(sessions, spool, TRANSPORTS)


@pytest.fixture
def down_service(down_sessions: sessionmaker, spool: Spool) -> EscalationService:
    return EscalationService(down_sessions, spool, TRANSPORTS)
