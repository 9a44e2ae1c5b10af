"""Staff replies by text: the Rasa side, served by the SMS channel at ``/webhooks/twilio/staff/``.

The same protocol as the web chat's staff bridge (:mod:`bot.channels.staff_bridge`),
for conversations that came in by SMS or WhatsApp. The web app stores each staff line
first (:mod:`bot.messaging.staff_replies`), then asks here to

* ``POST takeover``: pause the assistant (Rasa's ``ConversationPaused``) and text the
  patient that a named person from the clinic is now answering;
* ``POST message``: text the patient a staff message (their name before it), or, with
  ``"template": true``, the approved WhatsApp template (``TWILIO_WHATSAPP_TEMPLATE_SID``);
* ``POST handback``: resume the assistant (``ConversationResumed``), saying so;
* ``POST presence``: whether the conversation is known and paused.

Each line is appended to the conversation as a ``BotUttered`` event naming the staff
member (under Rasa's lock for the conversation, so it sits in the transcript in order),
then marked logged and queued for sending in one transaction: the SMS outbox sends it
with the same rules as every text (never to a number that opted out, never free text
outside WhatsApp's window). Bodies are ``{"sender_id": ..., "line_id": ...}``; every
call needs ``X-Bridge-Secret`` (``STAFF_BRIDGE_SECRET``). Text and numbers never reach a
log line.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Optional

from rasa.shared.core.events import BotUttered, ConversationPaused, ConversationResumed
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select

from bot.channels.guard import short_id
from bot.channels.live_chats import staff_metadata
from bot.channels.staff_bridge import BridgeRefusal, Operation, bridge_endpoint, carries_secret
from bot.messaging import store
from bot.messaging.chunks import split_message
from bot.store import chat
from bot.store.db import bounded
from bot.store.models import ChatLineKind, SmsOutbound, StaffChatLine, utcnow

if TYPE_CHECKING:
    from bot.channels.twilio_sms import ClinicSmsInput

logger = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 0.2


def sms_body(line: StaffChatLine, clinic_name: str) -> str:
    """What the patient's phone shows for a staff line: a message carries its writer's name."""
    kind = getattr(line.kind, "value", line.kind)
    if kind == ChatLineKind.message.value:
        return f"{line.author_name} ({clinic_name}): {line.body}"
    return line.body


class SmsStaffBridge:
    """The staff routes of the SMS channel."""

    def __init__(self, channel: "ClinicSmsInput") -> None:
        self.channel = channel
        self.secret = channel.settings.staff_bridge_secret.encode("utf-8")

    def authorised(self, request: Request) -> bool:
        """Whether the request carries the bridge secret (constant-time comparison)."""
        return carries_secret(request, self.secret)

    def add_routes(self, blueprint: Blueprint) -> None:
        """Register ``staff/takeover``, ``staff/message``, ``staff/handback`` and ``staff/presence``."""

        def unavailable() -> Optional[str]:
            return "sms_channel_not_configured" if self.channel.service is None else None

        def endpoint(operation: Operation) -> Callable[[Request], Awaitable[HTTPResponse]]:
            return bridge_endpoint(
                operation, self.secret, "SMS staff", f"sms_staff_{operation.__name__}", unavailable
            )

        blueprint.add_route(endpoint(self.take_over), "/staff/takeover", methods=["POST"], name="sms_staff_takeover")
        blueprint.add_route(endpoint(self.message), "/staff/message", methods=["POST"], name="sms_staff_message")
        blueprint.add_route(endpoint(self.hand_back), "/staff/handback", methods=["POST"], name="sms_staff_handback")
        blueprint.add_route(endpoint(self.presence), "/staff/presence", methods=["POST"], name="sms_staff_presence")

    async def take_over(self, request: Request, body: Dict[str, Any]) -> Dict[str, Any]:
        """Pause the assistant and text the joined notice."""
        return await self._post(request, body, ChatLineKind.joined, pause=True)

    async def message(self, request: Request, body: Dict[str, Any]) -> Dict[str, Any]:
        """Text a staff message into a paused conversation."""
        return await self._post(request, body, ChatLineKind.message, pause=None)

    async def hand_back(self, request: Request, body: Dict[str, Any]) -> Dict[str, Any]:
        """Resume the assistant, texting the patient so."""
        return await self._post(request, body, ChatLineKind.left, pause=False)

    async def presence(self, request: Request, body: Dict[str, Any]) -> Dict[str, Any]:
        """Whether the conversation is known here and paused."""
        sender_id = await self._sender(body)
        tracker = await _agent(request).tracker_store.retrieve(sender_id)
        return {"known": tracker is not None, "paused": bool(tracker is not None and tracker.is_paused()),
                "connected": False}

    async def _sender(self, body: Dict[str, Any]) -> str:
        sender_id = body.get("sender_id")
        if not isinstance(sender_id, str) or not sender_id.startswith("sms-"):
            raise BridgeRefusal(400, "not_sms")
        async with self.channel.service.sessions() as session:
            contact = await store.contact_by_sender(session, sender_id)
        if contact is None:
            raise BridgeRefusal(404, "unknown_conversation")
        return sender_id

    async def _post(
        self, request: Request, body: Dict[str, Any], kind: ChatLineKind, pause: Optional[bool]
    ) -> Dict[str, Any]:
        sender_id = await self._sender(body)
        line_id = body.get("line_id")
        if not isinstance(line_id, int) or isinstance(line_id, bool):
            raise BridgeRefusal(400, "line_id_required")
        sessions = self.channel.service.sessions
        timeout = self.channel.settings.store_timeout_seconds

        async def read() -> Optional[StaffChatLine]:
            async with sessions() as session:
                return await chat.get_line(session, line_id)

        line = await bounded(read(), timeout)
        if line is None or line.sender_id != sender_id or getattr(line.kind, "value", line.kind) != kind.value:
            raise BridgeRefusal(404, "unknown_line")
        if line.failed_at is not None:
            raise BridgeRefusal(409, "line_failed")
        template_sid = None
        if body.get("template") is True:
            template_sid = self.channel.settings.twilio_whatsapp_template_sid
            if kind != ChatLineKind.message or not template_sid:
                raise BridgeRefusal(409, "no_template")
        agent = _agent(request)
        async with agent.lock_store.lock(sender_id, wait_time_in_seconds=LOCK_WAIT_SECONDS):
            tracker = await agent.tracker_store.retrieve(sender_id)
            if tracker is None:
                raise BridgeRefusal(404, "unknown_conversation")
            if pause is None and not tracker.is_paused():
                raise BridgeRefusal(409, "not_paused")
            if pause is True and not tracker.is_paused():
                tracker.update(ConversationPaused())
            if line.logged_at is None:
                tracker.update(BotUttered(text=line.body, metadata=staff_metadata(line)))
            if pause is False and tracker.is_paused():
                tracker.update(ConversationResumed())
            await agent.tracker_store.save(tracker)
        queued = await bounded(self._queue(line, template_sid), timeout)
        if self.channel.sender is not None:
            self.channel.sender.wake()
        logger.info("staff %s line %s for conversation %s: %d text(s) queued",
                    kind.value, line.id, short_id(sender_id), queued)
        return {"paused": pause if pause is not None else True, "queued": queued, "delivered": False,
                "connected": False}

    async def _queue(self, line: StaffChatLine, template_sid: Optional[str] = None) -> int:
        """Mark the line logged and queue its text (or the template), once: a repeated call queues nothing more."""
        now = utcnow()
        async with self.channel.service.sessions() as session:
            async with session.begin():
                await chat.mark_logged(session, line.id, now)
                done = (await session.execute(
                    select(SmsOutbound.id).where(SmsOutbound.staff_line_id == line.id).limit(1)
                )).first()
                if done is not None:
                    return 0
                contact = await store.contact_by_sender(session, line.sender_id)
                if template_sid:
                    parts = [line.body]  # what the dashboard shows; Twilio sends the approved template
                else:
                    parts = split_message(sms_body(line, self.channel.clinic.name), self.channel.texts.part_chars)
                await store.queue(
                    session, contact, parts, now, origin="staff", author=line.author_username,
                    escalation_id=line.escalation_id, staff_line_id=line.id, template_sid=template_sid,
                )
                return len(parts)


def _agent(request: Request) -> Any:
    agent = getattr(request.app.ctx, "agent", None)
    if agent is None or getattr(agent, "tracker_store", None) is None:
        raise BridgeRefusal(503, "assistant_not_ready")
    return agent
