"""Engine and session factory of the escalation store.

Nothing connects at import time: callers create the engine from settings and
own its lifetime. SQLite (default, under ``var/``) and PostgreSQL are both
supported through the same URL setting.

The store holds patient data, so the engine never prints SQL parameters in its
errors (``hide_parameters``), and the SQLite files (the database, its ``-wal``
and ``-shm`` companions and the folder they live in) are private to the service
user whatever the umask.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import weakref
from pathlib import Path
from typing import Any, Awaitable, Optional, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import sessionmaker

from bot.core.files import private_directory
from bot.core.settings import async_db_url

logger = logging.getLogger(__name__)

T = TypeVar("T")
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
#: In WAL mode ``NORMAL`` syncs at checkpoints, not at every commit: a commit is still atomic and
#: the file never corrupt, but a power cut (not a process crash) may lose the last commits before
#: the next checkpoint. ``FULL`` cost an fsync per tracker-store write on a patient's turn.
SYNCHRONOUS = "PRAGMA synchronous=NORMAL"


def sqlite_path(url: str) -> Optional[Path]:
    """The database file of a SQLite URL; ``None`` for other databases and in-memory SQLite."""
    parsed = make_url(async_db_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def prepare_sqlite_file(path: Path) -> None:
    """Create the database file (mode 0600) before SQLite does, and make existing files private.

    SQLite creates its ``-wal`` and ``-shm`` files with the database file's mode, so a
    private database file keeps its companions private too.
    """
    private_directory(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    secure_sqlite_files(path)
    use_wal(path)


def use_wal(path: Path, timeout: float = 15.0) -> None:
    """Put the database file in WAL mode (readers never wait for the writer); it stays so.

    Switching needs a moment alone with the file: if another process holds it past
    ``timeout``, the store keeps working in SQLite's default mode and says so.
    """
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=timeout)) as db:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:  # busy, or not a database: the engine's own connect reports that
        logger.warning("could not switch %s to WAL mode (%s); continuing in the default mode", path.name, exc)


def secure_sqlite_files(path: Path) -> None:
    """Set mode 0600 on the database file and its companions that exist and belong to this user."""
    for suffix in SQLITE_COMPANIONS:
        candidate = Path(f"{path}{suffix}")
        try:
            status = candidate.stat()
            if status.st_uid == os.geteuid() and status.st_mode & 0o077:
                candidate.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:
            logger.warning("could not make %s private to the service user", candidate.name)


def create_engine(url: str) -> AsyncEngine:
    """Create an async engine for ``url`` (sync or async form accepted)."""
    url = async_db_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True, "hide_parameters": True}
    database = sqlite_path(url)
    if parsed.get_backend_name() == "sqlite":
        if database is not None:
            prepare_sqlite_file(database)
        kwargs["connect_args"] = {"timeout": 15}
    else:
        kwargs["connect_args"] = {"timeout": 5, "command_timeout": 10}
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine, database)
    return engine


#: Each process's engines, by event loop (an engine's pool belongs to its loop) and database.
_process_engines: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncEngine]]" = (
    weakref.WeakKeyDictionary()
)


def process_engine(url: str) -> AsyncEngine:
    """This process's one engine for ``url``: every part of a process shares its pool.

    The Rasa server's SMS channel and its live-chat store, for example, would otherwise open
    two pools on the same database. Tests that run several event loops get one per loop.
    """
    engines = _process_engines.setdefault(asyncio.get_event_loop(), {})
    key = async_db_url(url)
    if key not in engines:
        engines[key] = create_engine(url)
    return engines[key]


async def close_process_engines() -> None:
    """Dispose of this process's engines on the running loop (at shutdown)."""
    for engine in _process_engines.pop(asyncio.get_event_loop(), {}).values():
        await engine.dispose()


def _sqlite_pragmas(engine: AsyncEngine, database: Optional[Path]) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        try:
            cursor = dbapi_connection.cursor()
            # No journal_mode here: WAL is a property of the file, set once by
            # use_wal(); asking again on every connection took a lock outside the busy
            # timeout, and a busy database answered "database is locked" at connect.
            cursor.execute(SYNCHRONOUS)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
        except Exception:
            # SQLAlchemy does not close a connection whose connect hook failed (say, a file that
            # is not a database); aiosqlite's thread for it would then keep the process alive.
            dbapi_connection.close()
            raise
        if database is not None:
            secure_sqlite_files(database)


def _tune_sync_sqlite(dbapi_connection: Any, _: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute(SYNCHRONOUS)


def tune_sqlite_connections() -> None:
    """Every synchronous SQLite connection this process opens gets :data:`SYNCHRONOUS` (idempotent).

    For engines created by others: Rasa's ``SQLTrackerStore`` makes its own (synchronous)
    engine from the endpoints file, so the pragma is set on SQLAlchemy's ``Engine`` class. This
    module's async engines set theirs in :func:`create_engine`.
    """
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _tune_sync_sqlite):
        event.listen(Engine, "connect", _tune_sync_sqlite)


def session_factory(engine: AsyncEngine) -> sessionmaker:
    """A factory of ``AsyncSession`` objects bound to ``engine``."""
    return sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, future=True)


async def bounded(call: Awaitable[T], seconds: float) -> T:
    """Await a store call for at most ``seconds``, then raise ``asyncio.TimeoutError``.

    ``asyncio.wait_for`` would also wait for the cancelled call to finish cleaning up,
    and on a database that hangs that clean-up (a rollback, a cancel request) can hang
    as well. Here the abandoned call is cancelled and left to finish in the background,
    so the caller regains control on time: the patient is waiting for an answer.
    """
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        return task.result()
    task.cancel()
    task.add_done_callback(_collect_abandoned)
    raise asyncio.TimeoutError(f"the store did not answer within {seconds:g}s")


def _collect_abandoned(task: "asyncio.Future[Any]") -> None:
    """Retrieve an abandoned call's outcome, so asyncio does not report it as never retrieved."""
    if not task.cancelled() and task.exception() is not None:
        logger.debug("an abandoned store call ended with %s", type(task.exception()).__name__)
