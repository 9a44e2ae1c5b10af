"""An escalation service over a fresh, migrated SQLite store, and one whose store is down."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import threading

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.store.db import create_engine, session_factory

TRANSPORTS = ("email", "webhook")


def clinic_open_now() -> Clinic:
    """A clinic open now, whatever the time: every day 06:00-18:00 in the fixed-offset zone where it is about noon.

    The urgent alert route says "alerted" only while the clinic is open (bot/core/escalation/alerting.py).
    """
    offset = 12 - datetime.now(timezone.utc).hour  # Etc/GMT names the offset with the sign reversed
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    every_day = {day: ["06:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return Clinic(name="Riverside Physiotherapy", phone="020 7946 0958", booking_url="https://clinic.example/book",
                  timezone=zone, opening_hours=every_day, bank_holidays="none")


def _aiosqlite_workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


@pytest.fixture
async def down_sessions() -> AsyncIterator[sessionmaker]:
    """Sessions on a SQLite file that can never be opened (its folder cannot be created)."""
    before = _aiosqlite_workers()
    # Not bot.core.store.db.create_engine: it would try (and fail) to create the folder up front.
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
    return EscalationService(sessions, spool, TRANSPORTS, clinic=clinic_open_now())


@pytest.fixture
def down_service(down_sessions: sessionmaker, spool: Spool) -> EscalationService:
    return EscalationService(down_sessions, spool, TRANSPORTS)
