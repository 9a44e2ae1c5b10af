"""Staff replies by text: the Rasa side, served by the SMS channel at ``/webhooks/twilio/staff/``.

The web chat's staff bridge (:class:`bot.assistant.channels.staff_bridge.StaffBridge`) with an SMS
:class:`SmsDelivery`, for conversations that came in by SMS or WhatsApp. The web app
stores each staff line first (:mod:`bot.dashboard.staff.handoff`), then asks here to

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

from typing import Any, Dict, Optional, Protocol

from sanic import Blueprint
from sanic.request import Request
from sqlalchemy import select

from bot.assistant.channels.staff_bridge import BridgeRefusal, StaffBridge
from bot.assistant.messaging.chunks import split_message
from bot.assistant.messaging.outbox import SmsSender
from bot.assistant.messaging.service import SmsService
from bot.assistant.messaging.texts import SmsTexts
from bot.core.clinic import Clinic
from bot.core.messaging import store
from bot.core.settings import Settings
from bot.core.store import chat
from bot.core.store.db import bounded
from bot.core.store.models import ChatLineKind, SmsOutbound, StaffChatLine, utcnow

class SmsChannel(Protocol):
    """What staff delivery needs of the SMS channel (:class:`bot.assistant.channels.twilio_sms.ClinicSmsInput`).

    Named here rather than imported, so the channel may import this module and not the reverse.
    """

    service: Optional[SmsService]  # None until the channel is configured and started
    settings: Settings  # the store timeout, the WhatsApp template
    sender: Optional[SmsSender]  # woken when a staff line is queued
    clinic: Clinic  # its name signs staff lines
    texts: SmsTexts  # the part size


def sms_body(line: StaffChatLine, clinic_name: str) -> str:
    """What the patient's phone shows for a staff line: a message carries its writer's name."""
    kind = getattr(line.kind, "value", line.kind)
    if kind == ChatLineKind.message.value:
        return f"{line.author_name} ({clinic_name}): {line.body}"
    return line.body


class SmsDelivery:
    """Staff lines as texts, through the SMS channel's outbox (:class:`bot.assistant.channels.staff_bridge.Delivery`)."""

    def __init__(self, channel: SmsChannel) -> None:
        self.channel = channel

    def unavailable(self) -> Optional[str]:
        return "sms_channel_not_configured" if self.channel.service is None else None

    async def conversation(self, request: Request, body: Dict[str, Any]) -> str:
        """An SMS or WhatsApp conversation this channel has a number for."""
        sender_id = body.get("sender_id")
        if not isinstance(sender_id, str) or not sender_id.startswith("sms-"):
            raise BridgeRefusal(400, "not_sms")
        async with self.channel.service.sessions() as session:
            contact = await store.contact_by_sender(session, sender_id)
        if contact is None:
            raise BridgeRefusal(404, "unknown_conversation")
        return sender_id

    async def read_line(self, request: Request, line_id: int) -> Optional[StaffChatLine]:
        async def read() -> Optional[StaffChatLine]:
            async with self.channel.service.sessions() as session:
                return await chat.get_line(session, line_id)

        return await bounded(read(), self.channel.settings.store_timeout_seconds)

    def options(self, line: StaffChatLine, kind: ChatLineKind, body: Dict[str, Any]) -> Dict[str, Any]:
        """``{"template": true}`` sends the approved WhatsApp template instead of the text, if one is set."""
        if body.get("template") is not True:
            return {}
        template_sid = self.channel.settings.twilio_whatsapp_template_sid
        if kind != ChatLineKind.message or not template_sid:
            raise BridgeRefusal(409, "no_template")
        return {"template_sid": template_sid}

    async def deliver(self, request: Request, line: StaffChatLine, options: Dict[str, Any]) -> Dict[str, Any]:
        """Queue the line's text for the outbox and wake its sender; texts are never 'delivered' at once."""
        queued = await bounded(self._queue(line, options.get("template_sid")),
                               self.channel.settings.store_timeout_seconds)
        if self.channel.sender is not None:
            self.channel.sender.wake()
        return {"queued": queued, "delivered": False, "connected": False}

    async def connected(self, request: Request, sender_id: str) -> bool:
        return False

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


def add_staff_routes(channel: SmsChannel, blueprint: Blueprint) -> StaffBridge:
    """Register ``staff/takeover``, ``staff/message``, ``staff/handback`` and ``staff/presence``."""
    bridge = StaffBridge(SmsDelivery(channel), channel.settings.staff_bridge_secret.encode("utf-8"), "SMS staff")
    bridge.add_routes(blueprint, prefix="/staff", name_prefix="sms_staff_")
    return bridge
