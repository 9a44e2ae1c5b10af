"""Whether the store has been migrated far enough for the staff accounts (for the command line).

The command line never creates or migrates a database itself: on a store that is
missing or behind, it says so and points at ``make migrate``.
"""

from __future__ import annotations

import logging
from typing import Optional

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import SQLAlchemyError

from bot.core.settings import sync_db_url
from bot.core.store.db import sqlite_path
from bot.core.store.migrate import alembic_config

#: The first revision with the tables the staff commands use.
STAFF_REVISION = "0003"


def schema_problem(database_url: str) -> Optional[str]:
    """``None`` when the store has the staff tables; otherwise a sentence saying what is wrong."""
    database = sqlite_path(database_url)
    if database is not None and not database.exists():
        return f"There is no database at {database} yet."
    script = ScriptDirectory.from_config(alembic_config(database_url))
    engine = create_engine(sync_db_url(database_url), poolclass=pool.NullPool, future=True)
    try:
        with engine.connect() as connection:
            quiet = logging.getLogger("alembic.runtime.migration")
            level = quiet.level
            quiet.setLevel(logging.WARNING)
            try:
                current = MigrationContext.configure(connection).get_current_heads()
            finally:
                quiet.setLevel(level)
    except SQLAlchemyError as exc:
        return f"The database cannot be reached ({type(exc).__name__})."
    finally:
        engine.dispose()
    if not current:
        return "The database has no tables yet."
    for head in current:
        try:
            if any(rev.revision == STAFF_REVISION for rev in script.iterate_revisions(head, "base")):
                return None
        except RevisionError:
            return None  # migrated by a newer release than this one: it has the staff tables
    return "The database is older than the staff accounts."
