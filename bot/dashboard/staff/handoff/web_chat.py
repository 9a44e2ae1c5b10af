"""The website chat's part of a handoff: presence, lines kept for the patient's return, the chat bridge.

Only web-chat (socket.io) conversations can be taken over. The Rasa server's staff bridge
(:mod:`bot.assistant.channels.staff_bridge`, ``/webhooks/staff_bridge/<operation>``) answers
whether a line reached the patient's open chat; if not, the dashboard says so and shows the
contact details given, and the line goes out by itself if the patient's browser comes back
within the session (its delivery window). Staff take the chat over explicitly before writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from sqlalchemy.orm import sessionmaker

from bot.core.channel_names import WEB_CHAT
from bot.core.clinic import Clinic
from bot.core.store.models import Escalation, StaffChatLine
from bot.dashboard.staff.handoff.bridge import Bridge, BridgeAnswer, BridgeUnavailable
from bot.dashboard.staff.handoff.errors import HandoffError, NotWebChat, NoTemplate, Refused
from bot.dashboard.staff.handoff.lines import iso, line_fields
from bot.dashboard.staff.handoff.policy import Presence, Seen, Wording
from bot.dashboard.staff.handoff.service import HandoffService

WORDING = Wording(
    joined=("{name} from {clinic} has joined the chat. You're now talking with a member of our team, "
            "not the automated assistant."),
    left=("{name} has left the chat, and the automated assistant is back. It can answer general questions "
          "about dry needling. To talk to the team again, call {phone}."),
    wrong_channel="Only conversations in the website chat can be taken over.",
    already_yours="You already have this chat.",
    held_by="{name} has this chat. They, or anyone, can hand it back to the assistant first.",
    held_elsewhere=("{name} has this patient's chat, from another of their escalations. They, or anyone, can hand "
                    "it back to the assistant first."),
    taken_meanwhile="A colleague took this chat over a moment ago. Reload to see who.",
    nobody_holds="Nobody from the clinic has this chat: the assistant is already answering.",
    assistant_back=("The assistant has this chat again (the patient started a new session), so the message was not "
                    "sent. Take the chat over again to write."),
    no_answer="The chat server did not answer, so {what}. Try again.",
    not_done={"takeover": "the chat was not taken over", "message": "the message was not sent",
              "handback": "the chat was not handed back"},
    gone="The chat server has no such conversation any more.",
    refused="The chat server refused the request. Try again, or call the patient.",
    take_over_first="Take the chat over first: the assistant is answering this patient.",
    only_holder="{name} has this chat; only they can write in it.",
)


class ChatBridge(Bridge):
    """Client of the web chat's staff bridge on the Rasa server."""

    path = "/webhooks/staff_bridge/"


def line_status(line: StaffChatLine) -> str:
    """``delivered``, ``waiting`` (kept for the patient's return), ``failed`` or ``sending``."""
    if line.failed_at is not None:
        return "failed"
    if line.delivered_at is not None:
        return "delivered"
    return "waiting" if line.logged_at is not None else "sending"


def line_dict(line: StaffChatLine) -> dict[str, Any]:
    """A chat line as the API shows it."""
    return {**line_fields(line), "status": line_status(line), "delivered_at": iso(line.delivered_at)}


@dataclass
class TakeoverState:
    """What the dashboard shows about staff in an escalation's chat."""

    escalation_id: str
    web_chat: bool
    holder: Optional[dict[str, Any]] = None
    mine: bool = False
    #: Whether the patient's chat is open now; ``None`` when the chat server could not be asked.
    connected: Optional[bool] = None
    paused: Optional[bool] = None
    contact: dict[str, Any] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "escalation_id": self.escalation_id, "web_chat": self.web_chat, "holder": self.holder,
            "mine": self.mine, "patient_connected": self.connected, "paused": self.paused,
            "contact": self.contact, "lines": self.lines,
        }


@dataclass(frozen=True)
class Sent:
    """The result of putting a line into the chat."""

    line: dict[str, Any]
    delivered: bool
    connected: bool

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "delivered": self.delivered, "patient_connected": self.connected}


class WebChatPolicy:
    """The website chat's :class:`~bot.dashboard.staff.handoff.policy.ChannelPolicy`."""

    wording = WORDING
    wrong_channel = NotWebChat
    takes_over_on_send = False
    refused_audit = None
    template_note = ""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def serves(self, escalation: Escalation) -> bool:
        return escalation.channel == WEB_CHAT

    async def party(self, session: Any, escalation: Escalation) -> None:
        return None

    def refusal(self, party: Any, template: bool, now: datetime) -> Optional[Refused]:
        return NoTemplate("The website chat has no message templates: write a message instead.") if template else None

    def audit_extra(self, party: Any) -> dict[str, Any]:
        return {}

    def bridge_refusal(self, answer: BridgeAnswer) -> Optional[HandoffError]:
        return NotWebChat(WORDING.wrong_channel) if answer.error == "not_a_web_chat" else None

    async def presence(self, escalation: Escalation) -> Optional[Presence]:
        if not self.serves(escalation):
            return None
        try:
            answer = await self.bridge.call("presence", {"sender_id": escalation.sender_id})
        except BridgeUnavailable:
            return None
        if not answer.ok:
            return None
        paused = bool(answer.body.get("paused"))
        return Presence(connected=bool(answer.body.get("connected")), paused=paused,
                        assistant_back=bool(answer.body.get("known")) and not paused)

    async def view(self, session: Any, seen: Seen, presence: Optional[Presence]) -> TakeoverState:
        escalation = seen.escalation
        return TakeoverState(
            escalation_id=escalation.id,
            web_chat=self.serves(escalation),
            holder=seen.holder,
            mine=seen.mine,
            connected=presence.connected if presence else None,
            paused=presence.paused if presence else None,
            contact={
                "name": escalation.contact_name, "method": escalation.contact_method,
                "detail": escalation.contact_detail, "consent": escalation.consent_given,
            },
            lines=[line_dict(line) for line in seen.lines],
        )

    def result(self, line: StaffChatLine, answer: BridgeAnswer) -> Sent:
        return Sent(line_dict(line), bool(answer.body.get("delivered")), bool(answer.body.get("connected")))


def web_chat_handoff(sessions: sessionmaker, bridge: Bridge, clinic: Clinic) -> HandoffService:
    """The handoff service for website-chat conversations."""
    return HandoffService(sessions, WebChatPolicy(bridge), clinic)
