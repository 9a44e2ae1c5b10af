"""The staff bridge: how the web app asks the Rasa server to act on a patient's web chat.

The Rasa process owns the patient's socket and the conversation's tracker, so the
dashboard (a separate process, with no Rasa in it) asks it through this internal
channel, listed in ``credentials.yml`` and served at ``/webhooks/staff_bridge/``:

* ``POST takeover``  - pause the assistant (Rasa's ``ConversationPaused``) and put the
  "<name> from <clinic> has joined the chat" line into the chat;
* ``POST message``   - put a staff message into the chat;
* ``POST handback``  - resume the assistant (``ConversationResumed``) with a line saying so;
* ``POST presence``  - whether the patient's chat is open (on this replica or, with ``REDIS_URL``,
  any replica sharing the Redis), and whether it is paused.

Bodies are small JSON objects: ``{"sender_id": ..., "line_id": ...}``. The web app
writes each line to the store first (:mod:`bot.core.store.chat`); the bridge reads the
text from there, appends it to the conversation as a ``BotUttered`` event whose
metadata names the staff member (so it is kept in the conversation, with the
patient's own messages, under Rasa's lock for that conversation), then emits it to
the patient's open chat (:class:`bot.assistant.channels.live_chats.LiveChats`). The answer says
whether it was delivered; a line that found no open chat goes out when the patient
comes back within the session.

Every call needs the header ``X-Bridge-Secret`` (``STAFF_BRIDGE_SECRET``, compared in
constant time), else 401. Only web-chat conversations (socket.io session ids) can be
reached here. Message text and sender ids never reach a log line.

The protocol is one :class:`StaffBridge` for every channel; what differs is a
:class:`Delivery`: :class:`WebChatDelivery` here, ``SmsDelivery`` for texts
(:mod:`bot.assistant.channels.sms_staff`, served by the SMS channel at ``/webhooks/twilio/staff/``).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Protocol, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.core.events import BotUttered, ConversationPaused, ConversationResumed
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.assistant.channels.live_chats import LiveChats, staff_metadata
from bot.assistant.channels.sessions import is_session_shaped
from bot.core import process
from bot.core.channel_names import Channel
from bot.core.privacy import short_id

from bot.core.store import chat
from bot.core.store.db import bounded
from bot.core.store.models import ChatLineKind, StaffChatLine, utcnow

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Bridge-Secret"
MAX_BODY_BYTES = 4096
#: Seconds between attempts to take a conversation's lock while the assistant is answering in it.
LOCK_WAIT_SECONDS = 0.2


Operation = Callable[[Request, Dict[str, Any]], Awaitable[Dict[str, Any]]]
"""A bridge operation: the request and its parsed JSON body in, a JSON answer out."""


def carries_secret(request: Request, secret: bytes) -> bool:
    """Whether the request carries the bridge secret (constant-time comparison; no secret, no entry)."""
    given = request.headers.get(SECRET_HEADER, "")
    return bool(secret) and hmac.compare_digest(given.encode("utf-8"), secret)


def bridge_endpoint(
    operation: Operation,
    secret: bytes,
    what: str,
    name: str,
    unavailable: Optional[Callable[[], Optional[str]]] = None,
) -> Callable[[Request], Awaitable[HTTPResponse]]:
    """A Sanic handler for ``operation``: the secret checked (401), ``unavailable()`` asked (503 with
    its reason), the body parsed, and a refusal answered with its status. Shared by every staff bridge."""

    async def handle(request: Request) -> HTTPResponse:
        if not carries_secret(request, secret):
            logger.warning("refused a %s call without the right %s header", what, SECRET_HEADER)
            return response.json({"error": "unauthorised"}, status=401)
        reason = unavailable() if unavailable is not None else None
        if reason:
            return response.json({"error": reason}, status=503)
        try:
            return response.json(await operation(request, parse_body(request.body)))
        except BridgeRefusal as refusal:
            return response.json({"error": refusal.reason}, status=refusal.status)

    handle.__name__ = name
    return handle


class BridgeRefusal(Exception):
    """A call the bridge answers with an error status and a short machine-readable reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Delivery(Protocol):
    """How one channel's staff lines reach its patients (web chat here, SMS in :mod:`bot.assistant.channels.sms_staff`).

    The bridge does the rest the same way for every channel: the secret, the body, the line
    checks, and the conversation's events under Rasa's lock.
    """

    def unavailable(self) -> Optional[str]:
        """Why the channel cannot serve calls now (answered with 503), or None."""

    async def conversation(self, request: Request, body: Dict[str, Any]) -> str:
        """The sender id a call is about, or :class:`BridgeRefusal` if this channel does not serve it."""

    async def read_line(self, request: Request, line_id: int) -> Optional[StaffChatLine]:
        """The stored staff line."""

    def options(self, line: StaffChatLine, kind: ChatLineKind, body: Dict[str, Any]) -> Dict[str, Any]:
        """Channel options a call may carry (the SMS channel's WhatsApp template), checked."""

    async def deliver(self, request: Request, line: StaffChatLine, options: Dict[str, Any]) -> Dict[str, Any]:
        """Send a line now in the conversation; the answer's ``delivered``, ``connected`` (and more)."""

    async def connected(self, request: Request, sender_id: str) -> bool:
        """Whether the patient has an open chat now (on any replica, when they share Redis)."""


class StaffBridge:
    """The staff-bridge protocol over one channel's :class:`Delivery`."""

    def __init__(self, delivery: Delivery, secret: bytes, what: str) -> None:
        self.delivery = delivery
        self.secret = secret
        self.what = what

    def add_routes(self, blueprint: Blueprint, prefix: str = "", name_prefix: str = "") -> None:
        """Register ``takeover``, ``message``, ``handback`` and ``presence`` under ``prefix``."""
        for path, operation in (
            ("takeover", self.take_over), ("message", self.message), ("handback", self.hand_back),
            ("presence", self.presence),
        ):
            name = name_prefix + path
            blueprint.add_route(
                bridge_endpoint(operation, self.secret, self.what, name, self.delivery.unavailable),
                f"{prefix}/{path}", methods=["POST"], name=name,
            )

    # ---- operations -------------------------------------------------------------------------------

    async def take_over(self, request: Request, body: Dict[str, Any]) -> Dict[str, Any]:
        """Pause the assistant and put the joined line into the conversation."""
        return await self._post(request, body, ChatLineKind.joined, pause=True)

    async def message(self, request: Request, body: Dict[str, Any]) -> Dict[str, Any]:
        """Put a staff message into a paused conversation."""
        return await self._post(request, body, ChatLineKind.message, pause=None)

    async def hand_back(self, request: Request, body: Dict[str, Any]) -> Dict[str, Any]:
        """Resume the assistant, with a line saying so."""
        return await self._post(request, body, ChatLineKind.left, pause=False)

    async def presence(self, request: Request, body: Dict[str, Any]) -> Dict[str, Any]:
        """Whether the conversation is known here, paused, and open on this server now."""
        sender_id = await self.delivery.conversation(request, body)
        tracker = await agent_of(request).tracker_store.retrieve(sender_id)
        return {
            "known": tracker is not None,
            "paused": bool(tracker is not None and tracker.is_paused()),
            "connected": await self.delivery.connected(request, sender_id),
        }

    async def _post(
        self, request: Request, body: Dict[str, Any], kind: ChatLineKind, pause: Optional[bool]
    ) -> Dict[str, Any]:
        """Append ``kind``'s line (and the pause or resume) to the conversation, then deliver it."""
        sender_id = await self.delivery.conversation(request, body)
        line_id = body.get("line_id")
        if not isinstance(line_id, int) or isinstance(line_id, bool):
            raise BridgeRefusal(400, "line_id_required")
        line = await self.delivery.read_line(request, line_id)
        if line is None or line.sender_id != sender_id or getattr(line.kind, "value", line.kind) != kind.value:
            raise BridgeRefusal(404, "unknown_line")
        if line.failed_at is not None:
            # The web app gave up on it and told staff so: it never enters the conversation later.
            raise BridgeRefusal(409, "line_failed")
        options = self.delivery.options(line, kind, body)
        agent = agent_of(request)
        async with agent.lock_store.lock(sender_id, wait_time_in_seconds=LOCK_WAIT_SECONDS):
            tracker = await agent.tracker_store.retrieve(sender_id)
            if tracker is None:
                raise BridgeRefusal(404, "unknown_conversation")
            if pause is None and not tracker.is_paused():
                # The assistant has the conversation again (a hand-back, or a new session after a long silence).
                raise BridgeRefusal(409, "not_paused")
            if pause is True and not tracker.is_paused():
                tracker.update(ConversationPaused())
            if line.logged_at is None:
                tracker.update(BotUttered(text=line.body, metadata=staff_metadata(line)))
            if pause is False and tracker.is_paused():
                tracker.update(ConversationResumed())
            await agent.tracker_store.save(tracker)
        answer = await self.delivery.deliver(request, line, options)
        logger.info("%s: %s line %s for conversation %s: %s", self.what, kind.value, line.id, short_id(sender_id),
                    "delivered" if answer.get("delivered") else "kept or queued")
        return {"paused": pause if pause is not None else True, **answer}


class WebChatDelivery:
    """Staff lines into the patient's open socket.io chat (:class:`bot.assistant.channels.live_chats.LiveChats`)."""

    def __init__(self, store_timeout: float) -> None:
        self.store_timeout = store_timeout

    def unavailable(self) -> Optional[str]:
        return None

    async def conversation(self, request: Request, body: Dict[str, Any]) -> str:
        """A web-chat session id, on a server that has the web chat."""
        sender_id = body.get("sender_id")
        if not is_session_shaped(sender_id):
            raise BridgeRefusal(400, "not_a_web_chat")
        live_of(request)
        return sender_id

    async def read_line(self, request: Request, line_id: int) -> Optional[StaffChatLine]:
        live = live_of(request)

        async def read() -> Optional[StaffChatLine]:
            async with live.lines.sessions()() as session:
                return await chat.get_line(session, line_id)

        return await bounded(read(), self.store_timeout)

    def options(self, line: StaffChatLine, kind: ChatLineKind, body: Dict[str, Any]) -> Dict[str, Any]:
        return {}

    async def deliver(self, request: Request, line: StaffChatLine, options: Dict[str, Any]) -> Dict[str, Any]:
        """Mark the line logged, then emit it to the patient's open chat (kept for their return if none)."""
        live = live_of(request)
        now = utcnow()

        async def write() -> None:
            async with live.lines.sessions()() as session:
                async with session.begin():
                    await chat.mark_logged(session, line.id, now)

        await bounded(write(), self.store_timeout)
        line.logged_at = line.logged_at or now
        delivered = await live.deliver(line)
        return {"delivered": delivered, "connected": await live.connected(line.sender_id)}

    async def connected(self, request: Request, sender_id: str) -> bool:
        return await live_of(request).connected(sender_id)


class StaffBridgeInput(InputChannel):
    """Internal, authenticated channel through which staff act on web-chat conversations."""

    def __init__(self, secret: str, store_timeout: float = 8.0) -> None:
        self.secret = secret.encode("utf-8")
        self.bridge = StaffBridge(WebChatDelivery(store_timeout), self.secret, "staff bridge")

    @classmethod
    def name(cls) -> Text:
        """Served at ``/webhooks/staff_bridge/``."""
        return Channel.staff_bridge.value

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """The secret comes from the environment (or ``var/secrets``), never from credentials.yml."""
        if credentials:
            logger.warning("credentials.yml: staff_bridge takes no keys; set STAFF_BRIDGE_SECRET instead")
        settings = process.settings()
        return cls(settings.staff_bridge_secret, settings.store_timeout_seconds)

    def authorised(self, request: Request) -> bool:
        """Whether the request carries the bridge secret (constant-time comparison)."""
        return carries_secret(request, self.secret)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The bridge's routes; ``on_new_message`` is unused: nothing here is a patient message."""
        blueprint = Blueprint("staff_bridge", __name__)
        self.bridge.add_routes(blueprint)
        return blueprint


def parse_body(raw: bytes) -> Dict[str, Any]:
    """The JSON object of a bridge call (small, or refused)."""
    if len(raw or b"") > MAX_BODY_BYTES:
        raise BridgeRefusal(413, "body_too_large")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise BridgeRefusal(400, "invalid_json") from None
    if not isinstance(body, dict):
        raise BridgeRefusal(400, "invalid_json")
    return body


def agent_of(request: Request) -> Any:
    """The loaded agent, or 503."""
    agent = getattr(request.app.ctx, "agent", None)
    if agent is None or getattr(agent, "tracker_store", None) is None:
        raise BridgeRefusal(503, "assistant_not_ready")
    return agent


def live_of(request: Request) -> LiveChats:
    """The web-chat registry, or 503."""
    live = LiveChats.of(request.app)
    if live is None:
        raise BridgeRefusal(503, "web_chat_not_configured")
    return live
