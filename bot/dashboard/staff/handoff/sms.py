"""SMS and WhatsApp's part of a handoff: opt-out, WhatsApp's 24-hour window, the outbox.

For an escalation that came in by SMS or WhatsApp, staff text the patient through the same
channel: the first text takes the conversation over (the patient is told a named person from
the clinic is answering), and the Rasa server's SMS staff routes
(:mod:`bot.assistant.channels.sms_staff`, ``/webhooks/twilio/staff/<operation>``) put each
stored line into the conversation and queue its texts in the outbox, whose delivery reports
show per line.

Refused before anything is stored, with a clear message and an audit event (no text, no number):

* a number that opted out (STOP): nothing is ever sent to it, staff replies included;
* free text on WhatsApp more than 24 hours after the patient's last message: WhatsApp
  delivers only approved templates then, so the approved template is offered when one
  is configured (``TWILIO_WHATSAPP_TEMPLATE_SID``).

The outbox checks both rules again when it sends, whatever happened in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.core.channel_names import MESSAGING
from bot.core.clinic import Clinic
from bot.core.messaging import store
from bot.core.messaging.addresses import WHATSAPP, parse_address
from bot.core.messaging.window import free_text_allowed, window_closes_at
from bot.core.store.models import AuditKind, Escalation, SmsContact, SmsOutbound, SmsOutboundStatus, StaffChatLine
from bot.dashboard.staff.handoff.bridge import Bridge, BridgeAnswer
from bot.dashboard.staff.handoff.errors import HandoffError, NoTemplate, NotSms, OptedOut, Refused, WindowClosed
from bot.dashboard.staff.handoff.lines import iso, line_fields
from bot.dashboard.staff.handoff.policy import Presence, Seen, Wording
from bot.dashboard.staff.handoff.service import HandoffService

#: What the dashboard shows for a template line.
TEMPLATE_NOTE = "[Approved WhatsApp template sent, inviting the patient to reply]"

WORDING = Wording(
    joined=("This is {name} from {clinic}. You're now texting with a member of our team, "
            "not the automated assistant."),
    left=("{name} from {clinic} has handed you back to the automated assistant, which answers general "
          "questions about dry needling. To talk to the team again, call {phone}."),
    wrong_channel="This conversation did not come in by SMS or WhatsApp.",
    already_yours="You are already texting this patient.",
    held_by="{name} is texting this patient. They, or anyone, can hand back first.",
    held_elsewhere="This patient is being texted from another of their escalations.",
    taken_meanwhile="A colleague started texting this patient a moment ago. Reload to see who.",
    nobody_holds="Nobody from the clinic is texting this patient: the assistant is answering.",
    assistant_back=("The assistant has this conversation again (a new session started), so nothing was sent. "
                    "Send again to take it over."),
    no_answer="The assistant's server did not answer, so nothing was {what}. Try again.",
    not_done={"takeover": "taken over", "message": "sent", "handback": "handed back"},
    gone="The assistant's server has no such conversation any more.",
    refused="The assistant's server refused the request. Try again, or call the patient.",
)


class SmsBridge(Bridge):
    """Client of the SMS channel's staff routes on the Rasa server."""

    path = "/webhooks/twilio/staff/"


def delivery_of(line: StaffChatLine, texts: list[SmsOutbound]) -> str:
    """One word for how a staff line fared: sending, queued, sent, delivered, withheld or failed."""
    if line.failed_at is not None:
        return "failed"
    if not texts:
        return "sending"
    statuses = [getattr(t.status, "value", t.status) for t in texts]
    deliveries = [t.delivery_status or "" for t in texts]
    if (any(s == SmsOutboundStatus.failed.value for s in statuses)
            or any(d in store.FAILED_DELIVERY for d in deliveries)):
        return "failed"
    if any(s == SmsOutboundStatus.suppressed.value for s in statuses):
        return "withheld"
    if any(s == SmsOutboundStatus.pending.value for s in statuses):
        return "queued"
    if all(d in ("delivered", "read") for d in deliveries):
        return "delivered"
    return "sent"


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
            "window_closes_at": iso(self.window_closes_at), "template_available": self.template_available,
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


class SmsPolicy:
    """SMS and WhatsApp's :class:`~bot.dashboard.staff.handoff.policy.ChannelPolicy`."""

    wording = WORDING
    wrong_channel = NotSms
    takes_over_on_send = True
    refused_audit = AuditKind.sms_reply_refused
    template_note = TEMPLATE_NOTE

    def __init__(self, bridge: Bridge, template_sid: str = "") -> None:
        self.bridge = bridge
        self.template_sid = template_sid

    def serves(self, escalation: Escalation) -> bool:
        return escalation.channel in MESSAGING

    async def party(self, session: Any, escalation: Escalation) -> SmsContact:
        """The patient's number on record."""
        if not self.serves(escalation):
            raise NotSms(WORDING.wrong_channel)
        contact = await store.contact_by_sender(session, escalation.sender_id)
        if contact is None:
            raise NotSms("No phone number is on record for this conversation.")
        return contact

    def refusal(self, contact: SmsContact, template: bool, now: datetime) -> Optional[Refused]:
        if contact.opted_out_at is not None:
            return OptedOut(
                "This patient texted STOP, so nothing can be sent to their number, staff replies included. "
                "Contact them another way if they gave one, or wait until they text START."
            )
        if template and not (contact.kind == WHATSAPP and self.template_sid):
            return NoTemplate("No approved WhatsApp template is configured (TWILIO_WHATSAPP_TEMPLATE_SID).")
        if not template and not free_text_allowed(contact.kind, contact.last_inbound_at, now):
            offer = (" You can send the approved template, which invites the patient to reply; once they do, "
                     "you can text freely for 24 hours.") if self.template_sid else (
                     " No approved template is configured, so call the patient if they gave a number.")
            return WindowClosed(
                "WhatsApp only allows free text within 24 hours of the patient's last message, and that "
                "was longer ago, so this message was not sent." + offer
            )
        return None

    def audit_extra(self, contact: SmsContact) -> dict[str, Any]:
        return {"channel": contact.kind}

    def bridge_refusal(self, answer: BridgeAnswer) -> Optional[HandoffError]:
        if answer.error == "no_template":
            return NoTemplate("No approved WhatsApp template is configured on the assistant's server.")
        return None

    async def presence(self, escalation: Escalation) -> Optional[Presence]:
        return None  # texts are queued, never "delivered" at once: their delivery reports show per line

    async def view(self, session: Any, seen: Seen, presence: Optional[Presence]) -> SmsReplyState:
        contact: SmsContact = seen.party
        ids = [line.id for line in seen.lines]
        texts = list((await session.execute(
            select(SmsOutbound).where(SmsOutbound.staff_line_id.in_(ids))
        )).scalars()) if ids else []
        address = parse_address(contact.address)
        state = SmsReplyState(
            escalation_id=seen.escalation.id,
            kind=contact.kind,
            number=address.number if address else None,
            opted_out=contact.opted_out_at is not None,
            window_open=free_text_allowed(contact.kind, contact.last_inbound_at, seen.now),
            window_closes_at=window_closes_at(contact.kind, contact.last_inbound_at),
            template_available=contact.kind == WHATSAPP and bool(self.template_sid),
            holder=seen.holder,
            mine=seen.mine,
            failed_texts=await store.failed_count(session, seen.escalation.id),
        )
        for line in seen.lines:
            own = [text for text in texts if text.staff_line_id == line.id]
            state.lines.append({
                **line_fields(line), "status": delivery_of(line, own),
                "reason": next((t.last_error for t in own if t.status == SmsOutboundStatus.suppressed), None),
            })
        return state

    def result(self, line: StaffChatLine, answer: BridgeAnswer) -> SmsSent:
        return SmsSent(line_fields(line), int(answer.body.get("queued") or 0))


def sms_handoff(sessions: sessionmaker, bridge: Bridge, clinic: Clinic, template_sid: str = "") -> HandoffService:
    """The handoff service for SMS and WhatsApp conversations."""
    return HandoffService(sessions, SmsPolicy(bridge, template_sid), clinic)
