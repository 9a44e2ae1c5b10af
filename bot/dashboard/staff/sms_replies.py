"""Staff replies by text from the dashboard: the web app's side.

For an escalation that came in by SMS or WhatsApp, staff write a text and it goes to
the patient through the same channel, on the same takeover mechanism as the web chat
(:mod:`bot.dashboard.staff.takeover`): the first text starts a takeover (the assistant is paused,
the patient is told a named person from the clinic is answering), each line is stored
and audited before the Rasa server is asked to put it into the conversation and queue
it (:mod:`bot.assistant.channels.sms_staff`), and staff hand back to the assistant when done.

Refused, with a clear message for the dashboard and an audit event (no text, no number):

* a number that opted out (STOP): nothing is ever sent to it, staff replies included;
* free text on WhatsApp more than 24 hours after the patient's last message: WhatsApp
  delivers only approved templates then, so the approved template is offered when one
  is configured (``TWILIO_WHATSAPP_TEMPLATE_SID``).

The outbox checks both rules again when it sends, whatever happened in between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

import aiohttp
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.core.channel_names import MESSAGING
from bot.core.clinic import Clinic
from bot.core.messaging import store
from bot.core.messaging.addresses import WHATSAPP, parse_address
from bot.core.messaging.window import free_text_allowed, window_closes_at
from bot.core.store import chat
from bot.core.store import repository as repo
from bot.core.store.models import AuditKind, ChatLineKind, ChatTakeover, Escalation, SmsContact, SmsOutbound, SmsOutboundStatus, StaffChatLine, utcnow
from bot.dashboard.staff import cases
from bot.dashboard.staff.takeover import Bridge, BridgeAnswer, BridgeUnavailable, ChatServerUnavailable, EscalationNotFound, HeldByColleague, NotHolding, Staff, TakeoverError, clean_message, shown_name

logger = logging.getLogger(__name__)

SMS_CHANNELS = MESSAGING
SMS_BRIDGE_PATH = "/webhooks/twilio/staff/"
#: What the dashboard shows for a template line.
TEMPLATE_NOTE = "[Approved WhatsApp template sent, inviting the patient to reply]"


class NotSms(TakeoverError):
    status, code = 409, "not_sms"


class OptedOut(TakeoverError):
    status, code = 409, "opted_out"


class WindowClosed(TakeoverError):
    status, code = 409, "whatsapp_window_closed"


class NoTemplate(TakeoverError):
    status, code = 409, "no_template"


class SmsBridge(Bridge):
    """Client of the SMS channel's staff routes on the Rasa server (same protocol as the web chat's bridge)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, secret: str, timeout: float = 10.0) -> None:
        super().__init__(http, base_url, secret, timeout)
        self.url = base_url.rstrip("/") + SMS_BRIDGE_PATH


def joined_text(name: str, clinic: Clinic) -> str:
    """The text the patient gets when staff start answering."""
    return (
        f"This is {name} from {clinic.name}. You're now texting with a member of our team, "
        "not the automated assistant."
    )


def left_text(name: str, clinic: Clinic) -> str:
    """The text the patient gets when staff hand back."""
    return (
        f"{name} from {clinic.name} has handed you back to the automated assistant, which answers general "
        f"questions about dry needling. To talk to the team again, call {clinic.phone}."
    )


def delivery_of(line: StaffChatLine, texts: list[SmsOutbound]) -> str:
    """One word for how a staff line fared: sending, queued, sent, delivered, withheld or failed."""
    if line.failed_at is not None:
        return "failed"
    if not texts:
        return "sending"
    statuses = [getattr(t.status, "value", t.status) for t in texts]
    deliveries = [t.delivery_status or "" for t in texts]
    if any(s == SmsOutboundStatus.failed.value for s in statuses) or any(d in store.FAILED_DELIVERY for d in deliveries):
        return "failed"
    if any(s == SmsOutboundStatus.suppressed.value for s in statuses):
        return "withheld"
    if any(s == SmsOutboundStatus.pending.value for s in statuses):
        return "queued"
    if all(d in ("delivered", "read") for d in deliveries):
        return "delivered"
    return "sent"


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


@dataclass
class SmsReplyState:
    """What the dashboard shows about texting the patient of an escalation."""

    escalation_id: str
    kind: str
    #: The patient's number (staff-only: never in a URL or log line).
    number: Optional[str]
    opted_out: bool
    window_open: bool
    window_closes_at: Optional[datetime]
    template_available: bool
    holder: Optional[dict[str, Any]] = None
    mine: bool = False
    failed_texts: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def can_send_text(self) -> bool:
        """Whether free text can go now."""
        return not self.opted_out and self.window_open

    def to_dict(self) -> dict[str, Any]:
        return {
            "escalation_id": self.escalation_id, "channel": self.kind, "number": self.number,
            "opted_out": self.opted_out, "window_open": self.window_open,
            "window_closes_at": _iso(self.window_closes_at), "template_available": self.template_available,
            "can_send_text": self.can_send_text, "holder": self.holder, "mine": self.mine,
            "failed_texts": self.failed_texts, "lines": self.lines,
        }


@dataclass(frozen=True)
class SmsSent:
    """A staff line stored, put into the conversation and queued."""

    line: dict[str, Any]
    queued: int

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "queued": self.queued}


class SmsReplyService:
    """Text the patient of an SMS or WhatsApp escalation, and hand back to the assistant."""

    def __init__(self, sessions: sessionmaker, bridge: Bridge, clinic: Clinic, template_sid: str = "") -> None:
        self.sessions = sessions
        self.bridge = bridge
        self.clinic = clinic
        self.template_sid = template_sid

    # ---- reading ----------------------------------------------------------------------------------

    async def is_sms(self, escalation_id: str) -> bool:
        """Whether the escalation's conversation came in by SMS or WhatsApp."""
        async with self.sessions() as session:
            escalation = await session.get(Escalation, escalation_id)
        return escalation is not None and escalation.channel in SMS_CHANNELS

    async def state(self, escalation_id: str, staff: Staff) -> SmsReplyState:
        """The patient's number, opt-out, WhatsApp window, who holds the conversation, and the lines sent."""
        now = utcnow()
        async with self.sessions() as session:
            escalation, contact = await self._parties(session, escalation_id)
            takeover = await chat.active_takeover(session, escalation.sender_id)
            lines = list(await chat.lines_of(session, escalation_id))
            texts = list((await session.execute(
                select(SmsOutbound).where(SmsOutbound.staff_line_id.in_([line.id for line in lines]))
            )).scalars()) if lines else []
            failed = await store.failed_count(session, escalation_id)
        address = parse_address(contact.address)
        state = SmsReplyState(
            escalation_id=escalation_id,
            kind=contact.kind,
            number=address.number if address else None,
            opted_out=contact.opted_out_at is not None,
            window_open=free_text_allowed(contact.kind, contact.last_inbound_at, now),
            window_closes_at=window_closes_at(contact.kind, contact.last_inbound_at),
            template_available=contact.kind == WHATSAPP and bool(self.template_sid),
            failed_texts=failed,
        )
        if takeover is not None and takeover.escalation_id == escalation_id:
            state.holder = {"name": takeover.staff_name, "username": takeover.staff_username,
                            "since": _iso(takeover.started_at)}
            state.mine = takeover.staff_username == staff.username
        for line in lines:
            own = [text for text in texts if text.staff_line_id == line.id]
            state.lines.append({
                "id": line.id, "kind": getattr(line.kind, "value", line.kind), "author": line.author_name,
                "text": line.body, "at": _iso(line.created_at), "status": delivery_of(line, own),
                "reason": next((t.last_error for t in own if t.status == SmsOutboundStatus.suppressed), None),
            })
        return state

    # ---- acting -----------------------------------------------------------------------------------

    async def send(self, escalation_id: str, staff: Staff, text: Any) -> SmsSent:
        """Text the patient; the first text starts a takeover (the assistant pauses)."""
        body = clean_message(text)
        return await self._send(escalation_id, staff, body, template=False)

    async def send_template(self, escalation_id: str, staff: Staff) -> SmsSent:
        """Send the approved WhatsApp template (outside the 24-hour window)."""
        return await self._send(escalation_id, staff, TEMPLATE_NOTE, template=True)

    async def hand_back(self, escalation_id: str, staff: Staff) -> SmsSent:
        """Resume the assistant, texting the patient so. Any staff member may hand back."""
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                escalation, _ = await self._parties(session, escalation_id)
                takeover = await chat.active_takeover(session, escalation.sender_id)
                if takeover is None or takeover.escalation_id != escalation_id:
                    raise NotHolding("Nobody from the clinic is texting this patient: the assistant is answering.")
                line = await self._line(session, escalation, takeover.id, ChatLineKind.left, staff,
                                        left_text(takeover.staff_name, self.clinic), now)
        answer = await self._call("handback", escalation, line, "handed back")
        async with self.sessions() as session:
            async with session.begin():
                await chat.end_takeover(session, takeover.id, by=staff.username, now=utcnow())
                await repo.add_audit(
                    session, AuditKind.chat_handed_back, escalation_id=escalation.id, sender_id=escalation.sender_id,
                    actor=staff.username, detail={"takeover_id": takeover.id, "line_id": line.id, "channel": "sms"},
                )
        logger.info("escalation %s: texting handed back by %s", escalation_id, staff.username)
        return await self._sent(line.id, answer)

    async def _send(self, escalation_id: str, staff: Staff, body: str, template: bool) -> SmsSent:
        now = utcnow()
        await self._check_allowed(escalation_id, staff, template, now)
        name = shown_name(staff)
        joined: Optional[StaffChatLine] = None
        try:
            async with self.sessions() as session:
                async with session.begin():
                    escalation, contact = await self._parties(session, escalation_id)
                    takeover = await chat.active_takeover(session, escalation.sender_id)
                    if takeover is not None and takeover.escalation_id != escalation_id:
                        raise HeldByColleague("This patient is being texted from another of their escalations.")
                    if takeover is not None and takeover.staff_username != staff.username:
                        raise HeldByColleague(
                            f"{takeover.staff_name} is texting this patient. They, or anyone, can hand back first."
                        )
                    if takeover is None:
                        takeover = await chat.start_takeover(
                            session, escalation_id=escalation_id, sender_id=escalation.sender_id, user_id=staff.id,
                            username=staff.username, name=name, now=now,
                        )
                        joined = await self._line(session, escalation, takeover.id, ChatLineKind.joined, staff,
                                                  joined_text(name, self.clinic), now)
                        await self._audit(session, AuditKind.chat_taken_over, escalation, staff,
                                          {"takeover_id": takeover.id, "line_id": joined.id, "channel": contact.kind})
                    line = await self._line(session, escalation, takeover.id, ChatLineKind.message, staff, body, now)
                    await self._audit(session, AuditKind.chat_message_sent, escalation, staff,
                                      {"takeover_id": takeover.id, "line_id": line.id, "chars": len(body),
                                       "channel": contact.kind, "template": template})
        except IntegrityError:
            raise HeldByColleague("A colleague started texting this patient a moment ago. Reload to see who.") from None
        if joined is not None:
            try:
                await self._call("takeover", escalation, joined, "taken over")
            except TakeoverError:
                await self._fail(line)
                await self._close(takeover, by="system")
                raise
            await cases.claim(self.sessions, escalation_id, staff)
        answer = await self._call("message", escalation, line, "sent", template=template)
        return await self._sent(line.id, answer)

    async def _check_allowed(self, escalation_id: str, staff: Staff, template: bool, now: datetime) -> None:
        """Refuse (and audit) a text to a number that opted out, or free text outside WhatsApp's window."""
        async with self.sessions() as session:
            async with session.begin():
                escalation, contact = await self._parties(session, escalation_id)
                refusal: Optional[TakeoverError] = None
                if contact.opted_out_at is not None:
                    refusal = OptedOut(
                        "This patient texted STOP, so nothing can be sent to their number, staff replies included. "
                        "Contact them another way if they gave one, or wait until they text START."
                    )
                elif template and not (contact.kind == WHATSAPP and self.template_sid):
                    refusal = NoTemplate("No approved WhatsApp template is configured (TWILIO_WHATSAPP_TEMPLATE_SID).")
                elif not template and not free_text_allowed(contact.kind, contact.last_inbound_at, now):
                    offer = (" You can send the approved template, which invites the patient to reply; once they do, "
                             "you can text freely for 24 hours.") if self.template_sid else (
                             " No approved template is configured, so call the patient if they gave a number.")
                    refusal = WindowClosed(
                        "WhatsApp only allows free text within 24 hours of the patient's last message, and that "
                        "was longer ago, so this message was not sent." + offer
                    )
                if refusal is None:
                    return
                await self._audit(session, AuditKind.sms_reply_refused, escalation, staff,
                                  {"reason": refusal.code, "channel": contact.kind})
        raise refusal

    # ---- helpers ----------------------------------------------------------------------------------

    async def _parties(self, session: Any, escalation_id: str) -> tuple[Escalation, SmsContact]:
        escalation = await session.get(Escalation, escalation_id)
        if escalation is None:
            raise EscalationNotFound("No escalation with this id.")
        if escalation.channel not in SMS_CHANNELS:
            raise NotSms("This conversation did not come in by SMS or WhatsApp.")
        contact = await store.contact_by_sender(session, escalation.sender_id)
        if contact is None:
            raise NotSms("No phone number is on record for this conversation.")
        return escalation, contact

    async def _line(self, session: Any, escalation: Escalation, takeover_id: int, kind: ChatLineKind, staff: Staff,
                    body: str, now: datetime) -> StaffChatLine:
        return await chat.add_line(
            session, escalation_id=escalation.id, takeover_id=takeover_id, sender_id=escalation.sender_id, kind=kind,
            username=staff.username, name=shown_name(staff), body=body, now=now,
        )

    @staticmethod
    async def _audit(session: Any, kind: AuditKind, escalation: Escalation, staff: Staff, detail: dict) -> None:
        await repo.add_audit(session, kind, escalation_id=escalation.id, sender_id=escalation.sender_id,
                             actor=staff.username, detail=detail)

    async def _call(self, operation: str, escalation: Escalation, line: StaffChatLine, done: str,
                    template: bool = False) -> BridgeAnswer:
        body: dict[str, Any] = {"sender_id": escalation.sender_id, "line_id": line.id}
        if template:
            body["template"] = True
        try:
            answer = await self.bridge.call(operation, body)
        except BridgeUnavailable:
            await self._fail(line)
            raise ChatServerUnavailable(f"The assistant's server did not answer, so nothing was {done}. Try again.")
        if answer.ok:
            return answer
        await self._fail(line)
        if answer.status == 409 and answer.error == "not_paused":
            raise NotHolding("The assistant has this conversation again (a new session started), so nothing was "
                             "sent. Send again to take it over.")
        if answer.error in ("unknown_conversation", "unknown_line"):
            raise EscalationNotFound("The assistant's server has no such conversation any more.")
        if answer.error == "no_template":
            raise NoTemplate("No approved WhatsApp template is configured on the assistant's server.")
        logger.error("SMS staff bridge refused %s: %s %s", operation, answer.status, answer.error)
        raise ChatServerUnavailable("The assistant's server refused the request. Try again, or call the patient.")

    async def _fail(self, line: StaffChatLine) -> None:
        async with self.sessions() as session:
            async with session.begin():
                await chat.mark_failed(session, line.id, utcnow())

    async def _close(self, takeover: ChatTakeover, by: str) -> None:
        async with self.sessions() as session:
            async with session.begin():
                await chat.end_takeover(session, takeover.id, by=by, now=utcnow())

    async def _sent(self, line_id: int, answer: BridgeAnswer) -> SmsSent:
        async with self.sessions() as session:
            line = await chat.get_line(session, line_id)
        return SmsSent(
            {"id": line.id, "kind": getattr(line.kind, "value", line.kind), "author": line.author_name,
             "text": line.body, "at": _iso(line.created_at)},
            int(answer.body.get("queued") or 0),
        )
