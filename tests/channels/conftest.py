"""A real Sanic server hosting the patient channels the way the Rasa server does, with a fake agent.

The app is configured like ``rasa run`` with ``cors=None`` (Rasa's ``configure_cors``
still runs, with no origins), so what a client sees here, headers included, is what
it sees from the real server; only the model is replaced by :class:`EchoAgent`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

import pytest
from rasa.core.channels.channel import UserMessage, register
from rasa.server import configure_cors
from sanic import Sanic

from bot.assistant.channels.rest import PatientRestInput
from bot.assistant.channels.socketio import PatientSocketIOInput
from bot.core.settings import REPO_ROOT, Settings

CLINIC_ORIGIN = "http://clinic.test"
FOREIGN_ORIGIN = "http://evil.test"
SOCKETIO_CREDENTIALS = {
    "user_message_evt": "user_uttered",
    "bot_message_evt": "bot_uttered",
    "session_persistence": True,
}


def channel_settings(**overrides) -> Settings:
    """Settings for the channels under test: one allowed origin, a fixed session secret."""
    base = Settings(
        cors_origins=(CLINIC_ORIGIN,),
        session_secret="test-session-secret",
        clinic_config=REPO_ROOT / "clinic.yml",
        sender_messages_per_minute=1000,
        address_messages_per_minute=1000,
    )
    return dataclasses.replace(base, **overrides)


@dataclass
class EchoAgent:
    """Stands in for Rasa's agent: answers every message with ``echo: <text>``."""

    received: list[UserMessage] = field(default_factory=list)

    async def handle_message(self, message: UserMessage) -> None:
        self.received.append(message)
        await message.output_channel.send_response(message.sender_id, {"text": f"echo: {message.text}"})


@dataclass
class ChannelServer:
    """Both patient channels on a loopback port."""

    url: str
    agent: EchoAgent
    rest: PatientRestInput
    socketio: PatientSocketIOInput

    @property
    def webhook(self) -> str:
        return f"{self.url}/webhooks/rest/webhook"


def build_app(
    settings: Settings, agent: EchoAgent, credentials: dict
) -> tuple[Sanic, PatientRestInput, PatientSocketIOInput]:
    """A Sanic app set up like ``rasa run --credentials credentials.yml`` with no CORS option."""
    app = Sanic(f"channels_{uuid.uuid4().hex}", configure_logging=False)
    configure_cors(app, None)
    rest = PatientRestInput.from_settings(settings)
    socketio = PatientSocketIOInput.from_settings(settings, credentials)
    register([rest, socketio], app, "/webhooks/")
    app.ctx.agent = agent
    return app, rest, socketio


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[ChannelServer]]]:
    """Start a channel server with the given settings overrides; stopped after the test."""
    servers = []

    async def start(socketio_credentials: dict | None = None, **overrides) -> ChannelServer:
        agent = EchoAgent()
        credentials = SOCKETIO_CREDENTIALS if socketio_credentials is None else socketio_credentials
        app, rest, socketio = build_app(channel_settings(**overrides), agent, credentials)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))  # a port no other test can take meanwhile
        port = listener.getsockname()[1]
        server = await app.create_server(sock=listener, return_asyncio_server=True, access_log=False)
        await server.startup()
        await server.start_serving()
        servers.append((server, socketio))
        return ChannelServer(url=f"http://127.0.0.1:{port}", agent=agent, rest=rest, socketio=socketio)

    yield start
    for server, channel in servers:
        await channel.sio.shutdown()
        await server.before_stop()
        server.close()
        for connection in list(server.connections):
            connection.close()  # pending long-polls too
        await server.wait_closed()
        await server.after_stop()
    # Engine.IO leaves each closed socket's ping timer sleeping; this test's loop ends here.
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


@pytest.fixture
async def channel_server(serve) -> AsyncIterator[ChannelServer]:
    """Both channels with the default test settings."""
    yield await serve()
