"""The whole assistant (Rasa server, action server, web app) with the SMS channel pointed at the fake Twilio.

Used by the SMS end-to-end and browser tests: patient texts are posted to the Rasa
server's ``/webhooks/twilio/webhook`` signed as Twilio signs them, and what the
assistant or staff send is read back from the fake Twilio's record.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.core.settings import sync_db_url
from bot.core.store.migrate import upgrade
from bot.core.store.models import SmsContact
from bot.launch import Stack, free_port
from tests.support.fake_twilio import (
    ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, WHATSAPP_FROM, FakeTwilio, inbound, signed_post, wait_until,
)
from tests.support.receivers import SMTPServer, WebhookReceiver


class SmsStack:
    """The running stack and the fake Twilio it texts through."""

    def __init__(self, stack: Stack, fake: FakeTwilio) -> None:
        self.stack = stack
        self.fake = fake
        self.webhook = f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/twilio/webhook"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.settings.web_port}"

    def post(self, number: str, body: str, **kwargs) -> None:
        """Text the assistant without waiting for an answer."""
        reply = signed_post(self.webhook, inbound(number, body, **kwargs))
        assert reply.status_code == 200, reply.text

    def text(self, number: str, body: str, **kwargs) -> list[str]:
        """Text the assistant; return the texts sent back for this one, once they stop coming."""
        before = len(self.fake.bodies(number))
        self.post(number, body, **kwargs)
        wait_until(lambda: len(self.fake.bodies(number)) > before, timeout=30)
        return self.settled(number, before)

    def settled(self, number: str, before: int, quiet: float = 1.5) -> list[str]:
        """The texts to ``number`` after the first ``before``, once none has come for ``quiet`` seconds."""
        count = -1
        while count != len(self.fake.bodies(number)):  # parts of one turn go out one after another
            count = len(self.fake.bodies(number))
            try:
                wait_until(lambda: len(self.fake.bodies(number)) > count, timeout=quiet)
            except AssertionError:
                break
        return self.fake.bodies(number)[before:]

    def query(self, statement) -> list:
        engine = create_engine(sync_db_url(self.stack.settings.database_url), future=True)
        try:
            with Session(engine) as session:
                rows = list(session.execute(statement).scalars())
                for row in rows:
                    if hasattr(row, "_sa_instance_state"):
                        session.expunge(row)
                return rows
        finally:
            engine.dispose()

    def contact(self, number: str) -> SmsContact:
        return self.query(select(SmsContact).where(SmsContact.address == number))[0]


@contextmanager
def running_sms_stack(var_dir: Path, **extra_env: str) -> Iterator[SmsStack]:
    """Start the stack with the SMS channel on (SMS and WhatsApp senders), and stop it afterwards."""
    fake = FakeTwilio().start()
    smtp = SMTPServer().start()
    hook = WebhookReceiver().start()
    rasa_port = free_port()
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "RASA_PORT": str(rasa_port),
        "ACTION_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
        "RATE_ADDRESS_PER_MINUTE": "100000",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "NOTIFY_EMAIL_TO": "team@clinic.example",
        "NOTIFY_WEBHOOK_URL": hook.url,
        "NOTIFY_INTERVAL_SECONDS": "0.5",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_WHATSAPP_FROM": WHATSAPP_FROM,
        "TWILIO_WEBHOOK_URL": f"http://127.0.0.1:{rasa_port}/webhooks/twilio/webhook",
        "TWILIO_API_BASE_URL": fake.url,
        "SMS_SEND_INTERVAL_SECONDS": "0.2",
        "SMS_MESSAGES_PER_MINUTE": "1000",
        **extra_env,
    }
    for name in ("DATABASE_URL", "REDIS_URL", "TWILIO_MESSAGING_SERVICE_SID"):
        env.pop(name, None)
    stack = Stack(env=env, log_dir=var_dir / "logs")
    upgrade(stack.settings.database_url)
    stack.start()
    try:
        stack.wait_ready(300)
        yield SmsStack(stack, fake)
    finally:
        stack.stop()
        fake.stop()
        smtp.stop()
        hook.stop()
