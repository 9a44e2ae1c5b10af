"""Rasa's REST channel (``POST /webhooks/rest/webhook``), hardened.

Request and response formats are Rasa's: ``{"sender": "...", "message": "..."}``
in, a JSON list of bot messages out. A malformed request gets a 400 with a JSON
explanation instead of a 500, and every message passes through
:func:`bot.channels.guard.guard`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import guard
from bot.clinic import load_clinic
from bot.settings import Settings

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 128
MAX_BODY_BYTES = 256 * 1024


def _bad_request(reason: str) -> HTTPResponse:
    return response.json({"error": "bad_request", "reason": reason}, status=400)


class PatientRestInput(RestInput):
    """REST channel with request validation and a never-silent reply."""

    @classmethod
    def name(cls) -> Text:
        """Keeps Rasa's channel name, so the webhook URL is unchanged."""
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Create the channel; settings come from the environment."""
        channel = cls()
        settings = Settings.from_env()
        channel.clinic = load_clinic(settings.clinic_config)
        channel.max_chars = settings.max_message_chars
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        """The health and webhook routes."""
        handler = guard(on_new_message, self.clinic, self.max_chars)
        webhook = Blueprint("patient_rest_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if len(request.body or b"") > MAX_BODY_BYTES:
                return _bad_request("body too large")
            try:
                body = json.loads(request.body or b"")
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _bad_request("body must be a JSON object")
            if not isinstance(body, dict):
                return _bad_request("body must be a JSON object")
            sender = body.get("sender")
            if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
                return _bad_request(f"'sender' must be a non-empty string of at most {MAX_SENDER_CHARS} characters")
            text = body.get("message")
            if text is not None and not isinstance(text, (str, int, float)):
                return _bad_request("'message' must be a string")
            metadata = body.get("metadata")
            if not isinstance(metadata, dict):
                metadata = {}
            collector = CollectingOutputChannel()
            await handler(
                UserMessage(
                    "" if text is None else str(text),
                    collector,
                    sender.strip(),
                    input_channel=self.name(),
                    metadata=metadata,
                )
            )
            return response.json(collector.messages)

        return webhook
