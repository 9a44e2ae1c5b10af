"""A throwaway PostgreSQL server on loopback for the store's tests.

Uses the Debian package's binaries (installed by scripts/system-deps.sh): a new
cluster in a temporary folder, started on a free port, removed afterwards.
PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` system user.

A test module on PostgreSQL imports the fixtures by name (pytest collects them from the
module, so each module gets its own server)::

    from tests.support.postgres import server, sessions  # noqa: F401 - pytest fixtures
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator, Iterator, Optional

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import upgrade
from bot.cluster import postgres_bin_dir
from bot.launch import free_port


# A database migrated to head once per server; ``reset(migrated=True)`` copies it.
HEAD_TEMPLATE = "assistant_head"


class PostgresServer:
    """initdb + pg_ctl on a free port; ``url`` is a SQLAlchemy URL to database ``assistant``."""

    def __init__(self) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL binaries not found: run `make system-deps`")
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.data = self.root / "data"
        self.user: Optional[str] = "postgres" if os.geteuid() == 0 else None
        self._template_ready = False

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def url(self) -> str:
        return f"postgresql://assistant:assistant@127.0.0.1:{self.port}/assistant"

    def start(self) -> "PostgresServer":
        if self.user:
            record = pwd.getpwnam(self.user)
            os.chown(self.root, record.pw_uid, record.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.root / "log"),
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off", "start",
        )
        psql = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        self._run(*psql, "-c", "CREATE ROLE assistant LOGIN PASSWORD 'assistant'")
        self._run(*psql, "-c", "CREATE DATABASE assistant OWNER assistant")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def reset(self, migrated: bool = False) -> None:
        """Drop and recreate the test database (each test starts empty).

        ``migrated``: the new database is at the newest migration, copied from a template
        database that is migrated once per server (a copy takes a fraction of a migration run).
        """
        create = "CREATE DATABASE assistant OWNER assistant"
        if migrated:
            self._migrate_template()
            create += f" TEMPLATE {HEAD_TEMPLATE}"
        self._psql("DROP DATABASE IF EXISTS assistant WITH (FORCE)", create)

    def _migrate_template(self) -> None:
        if self._template_ready:
            return
        self._psql(f"CREATE DATABASE {HEAD_TEMPLATE} OWNER assistant")
        upgrade(self.url.rsplit("/", 1)[0] + f"/{HEAD_TEMPLATE}")
        self._template_ready = True

    def _psql(self, *statements: str) -> None:
        """Run each statement on its own, retrying while the database is still in use."""
        psql = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        for statement in statements:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self._run(*psql, "-c", statement)
                    break
                except subprocess.CalledProcessError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test module that imports this fixture."""
    pg = PostgresServer().start()
    yield pg
    pg.stop()


@pytest.fixture
async def sessions(server: PostgresServer) -> AsyncIterator["sessionmaker[AsyncSession]"]:
    """An empty database at the newest migration, and a session factory on it."""
    server.reset(migrated=True)
    engine = create_engine(server.url)
    yield session_factory(engine)
    await engine.dispose()
