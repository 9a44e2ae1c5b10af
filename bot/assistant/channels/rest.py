"""Rasa's REST channel (``POST /webhooks/rest/webhook``), hardened.

Request and response formats are Rasa's: ``{"sender": "...", "message": "..."}``
in, a JSON list of bot messages out. On top of Rasa's channel:

* browsers may call it only from the allowed origins (:mod:`bot.assistant.channels.cors`),
  with a proper ``OPTIONS`` preflight (this channel's, not Rasa's leftover
  Sanic-Cors, which it retires); other origins get no grant and a 403;
* a malformed or oversized request gets a 400 with a JSON explanation instead of
  a 500 (size caps in :mod:`bot.assistant.channels.caps`);
* sender ids of the form the socket.io channel issues are refused with a 400, so
  a REST caller cannot write into a browser's conversation
  (:mod:`bot.assistant.channels.sessions`);
* a sender or client address over its rate limit gets a 429 whose body is the
  usual list of bot messages, holding a polite message with the clinic's phone
  number (:mod:`bot.assistant.channels.limits`);
* the message's metadata carries a keyed hash of the client address (set here, never
  taken from the client), for the cap on urgent escalations per address
  (:mod:`bot.core.escalation.flood`);
* every message passes through :func:`bot.assistant.channels.guard.guard`.
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

from bot.assistant.channels.caps import MAX_REQUEST_BYTES, MAX_SENDER_CHARS, parse_metadata
from bot.assistant.channels.cors import CorsPolicy, retire_rasa_cors
from bot.assistant.channels.guard import guard
from bot.assistant.channels.limits import client_address, message_limits
from bot.assistant.channels.replies import rate_limited_reply
from bot.assistant.channels.sessions import is_session_shaped
from bot.core import process
from bot.core.channel_names import Channel
from bot.core.clinic import load_clinic
from bot.core.escalation.flood import with_client_key
from bot.core.privacy import short_id
from bot.core.settings import Settings

logger = logging.getLogger(__name__)

WEBHOOK_METHODS = "POST, OPTIONS"


def _bad_request(reason: str) -> HTTPResponse:
    return response.json({"error": "bad_request", "reason": reason}, status=400)


class PatientRestInput(RestInput):
    """REST channel with origin checks, request validation, rate limits and a never-silent reply."""

    @classmethod
    def name(cls) -> Text:
        """Keeps Rasa's channel name, so the webhook URL is unchanged."""
        return Channel.rest.value

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Create the channel; its settings come from the environment."""
        return cls.from_settings(process.settings())

    @classmethod
    def from_settings(cls, settings: Settings) -> "PatientRestInput":
        """Create the channel from the process settings."""
        channel = cls()
        channel.clinic = load_clinic(settings.clinic_config)
        channel.max_chars = settings.max_message_chars
        channel.cors = CorsPolicy.of(settings.cors_origins)
        channel.key_secret = settings.session_secret
        channel.limits = message_limits(settings)
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        """The health and webhook routes."""
        handler = guard(on_new_message, self.clinic, self.max_chars)
        webhook = Blueprint("patient_rest_webhook", __name__)

        @webhook.listener("before_server_start")
        async def one_cors_policy(app: Any, _loop: Any) -> None:
            retire_rasa_cors(app)  # else Sanic-Cors answers the preflight before ``preflight`` below

        @webhook.middleware("response")
        async def grant_allowed_origin(request: Request, reply: HTTPResponse) -> None:
            if request.method != "OPTIONS":
                reply.headers.update(self.cors.grant(request.headers.get("origin")))

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["OPTIONS"])
        async def preflight(request: Request) -> HTTPResponse:
            headers = self.cors.preflight(request.headers.get("origin"), WEBHOOK_METHODS)
            return response.empty(status=204, headers=headers)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.cors.allows(request.headers.get("origin")):
                return response.json(
                    {"error": "forbidden", "reason": "this origin may not use the webhook"}, status=403
                )
            if len(request.body or b"") > MAX_REQUEST_BYTES:
                return _bad_request(f"body larger than {MAX_REQUEST_BYTES} bytes")
            try:
                body = json.loads(request.body or b"")
            except (ValueError, RecursionError):  # not JSON, not UTF-8/16/32, or nested past Python's stack
                return _bad_request("body must be a JSON object")
            if not isinstance(body, dict):
                return _bad_request("body must be a JSON object")
            sender = body.get("sender")
            if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
                return _bad_request(f"'sender' must be a non-empty string of at most {MAX_SENDER_CHARS} characters")
            sender = sender.strip()
            if is_session_shaped(sender):
                return _bad_request("'sender' has the form reserved for web chat sessions; choose another id")
            text = body.get("message")
            if text is not None and not isinstance(text, (str, int, float)):
                return _bad_request("'message' must be a string")
            metadata = parse_metadata(body.get("metadata"))
            if metadata is None:
                return _bad_request("'metadata' is too large")
            metadata = with_client_key(metadata, client_address(request), self.key_secret)
            if not await self.limits.admit(sender, client_address(request)):
                logger.warning("rate limit reached for REST sender %s", short_id(sender))
                return response.json(
                    [{"recipient_id": sender, "text": rate_limited_reply(self.clinic)}],
                    status=429,
                    headers={"Retry-After": "60"},
                )
            collector = CollectingOutputChannel()
            await handler(
                UserMessage(
                    "" if text is None else str(text),
                    collector,
                    sender,
                    input_channel=self.name(),
                    metadata=metadata,
                )
            )
            return response.json(collector.messages)

        return webhook
