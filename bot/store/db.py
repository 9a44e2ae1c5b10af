"""Engine and session factory of the escalation store.

Nothing connects at import time: callers create the engine from settings and
own its lifetime. SQLite (default, under ``var/``) and PostgreSQL are both
supported through the same URL setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import sessionmaker

from bot.settings import async_db_url


def create_engine(url: str) -> AsyncEngine:
    """Create an async engine for ``url`` (sync or async form accepted)."""
    url = async_db_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 15}
    else:
        kwargs["connect_args"] = {"timeout": 5, "command_timeout": 10}
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine)
    return engine


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:  # pragma: no cover - trivial
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def session_factory(engine: AsyncEngine) -> sessionmaker:
    """A factory of ``AsyncSession`` objects bound to ``engine``."""
    return sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, future=True)
