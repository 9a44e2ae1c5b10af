"""Apply the escalation store's migrations: ``python -m bot.core.store.migrate``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from alembic import command
from alembic.config import Config

from bot.core import process
from bot.core.settings import sync_db_url
from bot.core.store.db import prepare_sqlite_file, secure_sqlite_files, sqlite_path

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration pointing at ``database_url``."""
    config = Config(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE / "migrations"))
    config.set_main_option("sqlalchemy.url", sync_db_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: Optional[str] = None, revision: str = "head") -> None:
    """Upgrade the store at ``database_url`` (default: from the environment)."""
    url = database_url or process.settings().database_url
    database = sqlite_path(url)
    if database is not None:
        prepare_sqlite_file(database)
    command.upgrade(alembic_config(url), revision)
    if database is not None:
        secure_sqlite_files(database)


if __name__ == "__main__":
    # Like the three servers: private file modes (var/ may be created here first) and filtered logs.
    process.start(read_secrets=False)  # a migration needs no secret
    upgrade()
