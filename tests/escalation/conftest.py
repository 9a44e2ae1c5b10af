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
from bot.store.migrate import upgrade

TRANSPORTS = ("email", "webhook")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite file in the test's own folder, migrated to head."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[sessionmaker]:
    """Sessions on the working store."""
    engine = create_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


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
