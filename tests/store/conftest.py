"""A fresh, migrated SQLite escalation store for every test."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlalchemy.orm import sessionmaker

from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite file in the test's own folder, migrated to head (creates the audit triggers)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[sessionmaker]:
    """A session factory bound to the test's store."""
    engine = create_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
