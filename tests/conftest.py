"""Shared fixtures: the trained model is built once by `make` before pytest runs;
end-to-end tests share one running stack per session.

Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``) every worker is its own
session: see :func:`pytest_collection_modifyitems` for which tests share a worker.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

from bot.core import process
from bot.core.settings import REPO_ROOT
from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import upgrade
from bot.launch import Stack
from bot.launch import free_port
from tests.support.receivers import SMTPServer, WebhookReceiver
from tests.support.silent_server import SilentServer

MODEL_DIR = REPO_ROOT / "models"

# Session fixtures that cost a whole stack start-up or a long run: every test using one runs
# on the same xdist worker, so each is set up once per run rather than once per worker.
# None: each module using it is its own group (the metamorphic run screens, on each worker,
# only the invariants that module's tests ask for: tests/safety/conftest.py).
ONE_WORKER_FIXTURES = {"live_stack": "live-stack", "metamorphic_results": None}
# Module fixtures that start servers (PostgreSQL, the whole stack with the SMS channel, the
# fuzzed apps): a module using one runs on one worker. Cheaper module fixtures (a loaded
# pipeline) are set up once on each worker that runs the module's tests.
ONE_WORKER_MODULE_FIXTURES = {"server", "sms_stack", "stack", "served", "on_call_stack", "web_app"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("serial_modules", "test modules whose tests are marked serial (timing-sensitive)", type="linelist")


UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """A uuid parameter gets a fixed id: one drawn at collection differs between xdist workers,
    and xdist refuses to run when workers collect different test ids."""
    if isinstance(val, uuid.UUID) or (isinstance(val, str) and UUID_TEXT.match(val)):
        return f"{argname}-uuid"
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep tests that share an expensive fixture on one xdist worker (``--dist loadgroup``).

    - a test using a fixture of ``ONE_WORKER_FIXTURES`` joins that fixture's group, or its
      module's for a fixture without one (and is marked ``slow``), and so does the rest of its module (its module fixtures, if any, are
      then set up once);
    - otherwise a test using a module fixture of ``ONE_WORKER_MODULE_FIXTURES`` joins its
      module's group.
    Other tests go to whichever worker is free. Without xdist the marks change nothing.
    Tests of the ``serial_modules`` (pyproject.toml) are marked ``serial``.
    """
    serial = {module.strip() for module in config.getini("serial_modules")}
    module_group: dict[str, str] = {}
    for item in items:
        for fixture, group in ONE_WORKER_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                module = item.nodeid.split("::")[0]
                module_group.setdefault(module, group or module)
    for item in items:
        module = item.nodeid.split("::")[0]
        if module in serial:
            item.add_marker(pytest.mark.serial)
        if any(fixture in getattr(item, "fixturenames", ()) for fixture in ONE_WORKER_FIXTURES):
            item.add_marker(pytest.mark.slow)
        group = module_group.get(module)
        if group is None:
            definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
            if any(definitions.get(name) and definitions[name][-1].scope == "module"
                   for name in ONE_WORKER_MODULE_FIXTURES):
                group = module
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def fresh_process_settings():
    """Each test reads the process settings afresh (bot.core.process keeps them per process)."""
    process.use_settings(None)
    yield
    process.use_settings(None)


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite escalation store migrated to head once per session (per xdist worker)."""
    path = tmp_path_factory.mktemp("migrated") / "store.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def db_url(tmp_path: Path, migrated_store: Path) -> str:
    """A SQLite escalation store in the test's own folder, migrated to head (creates the audit triggers).

    A copy of :func:`migrated_store` made with SQLite's backup API (whole and consistent,
    whatever the journal mode), not a fresh run of every migration: alembic took about a
    third of a second a test, and more than a thousand tests use a store.
    """
    path = tmp_path / "store.db"
    source, target = sqlite3.connect(migrated_store), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return f"sqlite:///{path}"


@pytest.fixture
async def sessions(db_url: str):
    """A session factory bound to the test's store."""
    engine = create_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def hanging_database() -> Iterator[SilentServer]:
    """A PostgreSQL address whose server accepts connections and never answers."""
    server = SilentServer().start()
    try:
        yield server
    finally:
        server.stop()


def require_model() -> None:
    """Fail (not skip) when no trained model exists: `make test` trains before pytest."""
    if not list(MODEL_DIR.glob("*.tar.gz")):
        pytest.fail("no trained model in models/: run the tests through `make test` (it trains once per run)")


@dataclass
class LiveStack:
    """The real Rasa server, action server and web app, on free loopback ports."""

    stack: Stack
    smtp: SMTPServer
    webhook: WebhookReceiver
    var_dir: Path

    @property
    def settings(self):
        return self.stack.settings

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    def say(self, sender: str, text: str, timeout: float = 30) -> list[dict]:
        """Send one message over the REST webhook; return the bot's replies."""
        reply = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=timeout
        )
        reply.raise_for_status()
        return reply.json()

    def restart_rasa(self) -> None:
        """Stop and start the Rasa server on the same port (conversation state is in the tracker store)."""
        self.stack.restart("rasa", timeout=240)

    def stop_actions(self) -> None:
        self.stack.stop("actions")

    def start_actions(self, env: dict[str, str] | None = None) -> None:
        """Start the action server, with ``env`` overriding variables for this start only."""
        self.stack.start("actions", env=env)
        self.stack.wait_ready(120, "actions")

    def restart_actions(self, env: dict[str, str] | None = None) -> None:
        """Restart the action server (``env``: overrides for this start only; none restores the default)."""
        self.stack.restart("actions", timeout=120, env=env)


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """Start the whole assistant once per test session."""
    require_model()
    var_dir = tmp_path_factory.mktemp("var")
    smtp = SMTPServer().start()
    webhook = WebhookReceiver().start()
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "RASA_PORT": str(free_port()),
        "ACTION_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
        # Every test talks from 127.0.0.1: the per-address limit is for the internet, not this suite.
        "RATE_ADDRESS_PER_MINUTE": "100000",
        # Likewise the cap on urgent escalations per address (bot/core/escalation/flood.py): every red flag
        # of the suite comes from 127.0.0.1, and each test checks its own case.
        "URGENT_PER_ADDRESS_PER_HOUR": "100000",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "NOTIFY_EMAIL_TO": "team@clinic.example",
        "NOTIFY_FROM": "assistant@clinic.example",
        "NOTIFY_WEBHOOK_URL": webhook.url,
        "NOTIFY_WEBHOOK_SECRET": "test-secret",
        "NOTIFY_INTERVAL_SECONDS": "0.5",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    stack = Stack(env=env, log_dir=var_dir / "logs")
    upgrade(stack.settings.database_url)
    stack.start()
    try:
        stack.wait_ready(300)
        yield LiveStack(stack=stack, smtp=smtp, webhook=webhook, var_dir=var_dir)
    finally:
        stack.stop()
        smtp.stop()
        webhook.stop()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.25):
    """Poll ``predicate`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture(scope="module")
def fake_twilio() -> Iterator["FakeTwilio"]:
    """The fake Twilio API (tests/support/fake_twilio.py), one per test module; tests clear it."""
    # Imported here: the web app's venv (.venv-web) reads this conftest too and has no twilio package.
    from tests.support.fake_twilio import FakeTwilio

    server = FakeTwilio().start()
    yield server
    server.stop()
