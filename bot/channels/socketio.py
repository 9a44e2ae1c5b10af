"""The website widget's channel: Rasa's standard socket.io protocol, hardened.

Same events and payloads as Rasa's ``SocketIOInput`` (``session_request`` /
``session_confirm``, ``user_uttered`` / ``bot_uttered``), so any standard Rasa
socket.io client keeps working. Differences:

* malformed events (not an object, missing or non-text fields, bad metadata)
  are answered or ignored politely instead of raising inside the handler;
* ``enter_room`` is awaited when python-socketio makes it a coroutine (5.10+),
  which Rasa 3.6.21 does not do, so bot replies still reach the browser;
* every message passes through :func:`bot.channels.guard.guard`.
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot.channels.guard import guard
from bot.clinic import load_clinic
from bot.settings import Settings

logger = logging.getLogger(__name__)


class PatientSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel with input checks and a never-silent reply."""

    @classmethod
    def name(cls) -> Text:
        """Keeps Rasa's channel name, so the path and events are unchanged."""
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Create the channel from its credentials entry."""
        channel = super().from_credentials(credentials)
        settings = Settings.from_env()
        channel.clinic = load_clinic(settings.clinic_config)
        channel.max_chars = settings.max_message_chars
        channel.cors_origins = (credentials or {}).get("cors_allowed_origins", "*")
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The socket.io endpoint, with the same events as Rasa's own channel."""
        handler = guard(on_new_message, self.clinic, self.max_chars)
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=self.cors_origins)
        blueprint = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict]) -> bool:
            if not self.jwt_key:
                return True
            from rasa.core.channels.channel import decode_bearer_token

            token = auth.get("token") if isinstance(auth, dict) else None
            return bool(token and decode_bearer_token(token, self.jwt_key, self.jwt_algorithm))

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Any = None) -> None:
            session_id = data.get("session_id") if isinstance(data, dict) else None
            if not isinstance(session_id, str) or not (8 <= len(session_id) <= 64):
                session_id = uuid.uuid4().hex
            if self.session_persistence:
                entered = sio.enter_room(sid, session_id, namespace=self.namespace)
                if inspect.isawaitable(entered):
                    await entered
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, data: Any = None) -> None:
            if not isinstance(data, dict):
                logger.warning("ignored a malformed %s event (not an object)", self.user_message_evt)
                return
            if self.session_persistence:
                sender_id = data.get("session_id")
                if not isinstance(sender_id, str) or not sender_id:
                    logger.warning("ignored a message without a session id")
                    return
            else:
                sender_id = sid
            metadata = data.get(self.metadata_key) or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except json.JSONDecodeError:
                    metadata = {}
            if not isinstance(metadata, dict):
                metadata = {}
            text = data.get("message")
            text = text if isinstance(text, str) else ("" if text is None else str(text))
            output = SocketIOOutput(sio, self.bot_message_evt)
            await handler(UserMessage(text, output, sender_id, input_channel=self.name(), metadata=metadata))

        return blueprint
