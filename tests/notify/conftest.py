"""A notifier over a fresh SQLite store, talking to a real local SMTP server and webhook receiver."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Iterator

import aiohttp
import pytest
from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic
from bot.core.escalation.service import EscalationService, transports
from bot.core.escalation.spool import Spool
from bot.core.settings import Settings
from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import upgrade
from bot.dashboard.notify.worker import Notifier
from tests.support.receivers import SMTPServer, WebhookReceiver

WEBHOOK_SECRET = "test-secret"
PUBLIC_WEB_URL = "https://assistant.clinic.example"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def settings(tmp_path: Path, smtp: SMTPServer, webhook: WebhookReceiver) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        notify_from="assistant@clinic.example",
        notify_email_to="team@clinic.example",
        notify_webhook_url=webhook.url,
        notify_webhook_secret=WEBHOOK_SECRET,
        public_web_url=PUBLIC_WEB_URL,
    )


@pytest.fixture
def clinic() -> Clinic:
    return Clinic(name="Riverside Physiotherapy", phone="020 7946 0958", booking_url="https://clinic.example/book")


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[sessionmaker]:
    upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def spool(settings: Settings) -> Spool:
    return Spool(settings.spool_dir)


@pytest.fixture
def service(settings: Settings, sessions: sessionmaker, spool: Spool) -> EscalationService:
    return EscalationService(sessions, spool, transports(settings))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def notifier(
    settings: Settings, clinic: Clinic, sessions: sessionmaker, service: EscalationService, http: aiohttp.ClientSession
) -> Notifier:
    return Notifier(settings, clinic, sessions, service, http)
