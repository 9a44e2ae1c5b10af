"""The SMS channel on a real Sanic server with a scripted agent, a migrated SQLite store and the fake Twilio.

The agent stands in for Rasa's: real in-memory tracker and lock stores, so a paused
conversation (staff holding it) gets no automated reply, exactly as Rasa's processor
behaves; its replies are scripted by the patient's text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import tempfile
from pathlib import Path

import aiohttp
from rasa.core.channels.channel import UserMessage, register
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.server import configure_cors
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Sanic
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.assistant.channels.twilio_sms import ClinicSmsInput
from bot.core.settings import REPO_ROOT, Settings
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import SmsContact, SmsOutbound
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, WHATSAPP_FROM, FakeTwilio, sign

BRIDGE_SECRET = "test-sms-bridge-secret"
MENU = {
    "text": "What would you like to know about dry needling?",
    "buttons": [
        {"title": "What is it?", "payload": "What is dry needling?"},
        {"title": "Does it hurt?", "payload": "Does it hurt?"},
        {"title": "Talk to a person", "payload": "/request_human"},
    ],
}
#: A text the scripted model calls a red flag (the safety screen's ``safety.reason`` is ``emergency``).
RED_FLAG = "I can't breathe since the needling"
LONG = " ".join(
    f"Sentence number {i} of a long answer explains one more thing about dry needling in plain words."
    for i in range(1, 13)
)


class ScriptedAgent:
    """Rasa's agent as the channel sees it, answering from a small script."""

    def __init__(self) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.lock_store = InMemoryLockStore()
        self.received: list[UserMessage] = []
        self.parsed: list[str] = []
        self.fail = False

    async def handle_message(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.fail:
            raise RuntimeError("the model failed")
        async with self.lock_store.lock(message.sender_id):
            tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
            tracker.update(UserUttered(
                message.text, input_channel=message.input_channel, parse_data=self.verdict(message.text),
                message_id=message.message_id,
            ))
            if not tracker.is_paused():
                for reply in self.script(message.text):
                    tracker.update(BotUttered(reply.get("text")))
                    await message.output_channel.send_response(message.sender_id, dict(reply))
            await self.tracker_store.save(tracker)

    async def parse_message(self, text: str) -> dict[str, Any]:
        """The model alone (what the channel asks when the store is out): the safety verdict of one text."""
        self.parsed.append(text)
        return self.verdict(text)

    @staticmethod
    def verdict(text: str) -> dict[str, Any]:
        """The scripted model's parse of ``text``: a red flag for :data:`RED_FLAG` only."""
        safety = {"reason": "emergency", "matched_terms": ["breathing difficulty"]} if text == RED_FLAG else {}
        return {"text": text, "intent": {"name": "report_adverse_event" if safety else "faq"}, "safety": safety}

    @staticmethod
    def script(text: str) -> list[dict[str, Any]]:
        if text == "menu":
            return [MENU]
        if text == "long":
            return [{"text": LONG}]
        if text == "silent":
            return []
        return [{"text": f"echo: {text}"}]


def sms_settings(db_url: str, port: int, fake: FakeTwilio, **overrides: Any) -> Settings:
    database = make_url(db_url).database if db_url.startswith("sqlite") else None
    # The spool of texts the store could not take lives beside the test's store, never in the real var/.
    var_dir = Path(database).parent / "var" if database else Path(tempfile.mkdtemp(prefix="sms-var-"))
    base = Settings(
        var_dir=var_dir,
        clinic_config=REPO_ROOT / "clinic.yml",
        database_url=db_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_whatsapp_from=WHATSAPP_FROM,
        twilio_webhook_url=f"http://127.0.0.1:{port}/webhooks/twilio/webhook",
        twilio_api_base_url=fake.url,
        sms_messages_per_minute=100,
        sms_daily_outbound_cap=1000,
        sms_send_interval_seconds=0.05,
        store_timeout_seconds=8.0,
        staff_bridge_secret=BRIDGE_SECRET,
    )
    return dataclasses.replace(base, **overrides)


@dataclass
class SmsServer:
    """The channel on loopback, and what the tests look at."""

    url: str
    agent: ScriptedAgent
    channel: ClinicSmsInput
    fake: FakeTwilio
    db_url: str
    _servers: list = field(default_factory=list)

    @property
    def webhook(self) -> str:
        return f"{self.url}/webhooks/twilio/webhook"

    @property
    def status_url(self) -> str:
        return f"{self.url}/webhooks/twilio/status"

    async def post(self, url: str, params: dict[str, str], signature: Optional[str] = "sign",
                   public_url: Optional[str] = None, raw: Optional[bytes] = None) -> tuple[int, str]:
        headers = {}
        if signature == "sign":
            headers["X-Twilio-Signature"] = sign(public_url or url, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        data: Any = raw if raw is not None else params
        if raw is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=data, headers=headers) as reply:
                return reply.status, await reply.text()

    async def text(self, params: dict[str, str], **kwargs: Any) -> tuple[int, str]:
        """Post a patient's text to the webhook, signed unless told otherwise."""
        return await self.post(self.webhook, params, **kwargs)

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        engine = create_engine(self.db_url)
        try:
            async with session_factory(engine)() as session:
                query = select(model).where(*where)
                if model is SmsOutbound:
                    query = query.order_by(SmsOutbound.id)
                return list((await session.execute(query)).scalars())
        finally:
            await engine.dispose()

    async def contact(self, address: str) -> Optional[SmsContact]:
        found = await self.rows(SmsContact, SmsContact.address == address)
        return found[0] if found else None

    @property
    def intro(self) -> str:
        """The notice before the first reply to a new number (tested on its own; left out by :meth:`bodies`)."""
        return self.channel.texts.render("first_contact", self.channel.clinic)

    @property
    def urgent_intro(self) -> str:
        """The one-text notice that follows the urgent guidance when a first text is a red flag."""
        return self.channel.texts.render("urgent_disclosure", self.channel.clinic)

    def bodies(self, address: str) -> list[str]:
        """Texts the fake accepted for ``address``, in order, without either first-contact notice."""
        notices = {self.intro, self.urgent_intro}
        return [body for body in self.fake.bodies(address) if body not in notices]

    async def sent_to(self, address: str, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until ``count`` texts (first-contact notice aside) reached the fake for ``address``; return them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            bodies = self.bodies(address)
            if len(bodies) >= count or asyncio.get_running_loop().time() > deadline:
                return bodies
            await asyncio.sleep(0.05)

    async def settle(self, seconds: float = 0.4) -> None:
        """Give the sender a few passes (to show that nothing more is sent)."""
        await asyncio.sleep(seconds)


async def start_sms_server(db_url: str, fake: FakeTwilio, **overrides: Any) -> tuple[SmsServer, Any]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    settings = sms_settings(db_url, port, fake, **overrides)
    app = Sanic(f"sms_{uuid.uuid4().hex}", configure_logging=False)
    configure_cors(app, None)
    channel = ClinicSmsInput.from_settings(settings)
    register([channel], app, "/webhooks/")
    agent = ScriptedAgent()
    app.ctx.agent = agent
    server = await app.create_server(sock=listener, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.start_serving()
    await channel.start()
    return SmsServer(f"http://127.0.0.1:{port}", agent, channel, fake, db_url), server


async def stop_sms_server(sms: SmsServer, server: Any) -> None:
    await sms.channel.stop()
    await server.before_stop()
    server.close()
    await server.wait_closed()
    await server.after_stop()
