"""Staff in a patient's web chat: take over, write, hand back (the web app's side).

The Rasa server owns the patient's socket, so this module asks it to act through
the staff bridge (:mod:`bot.assistant.channels.staff_bridge`, ``POST {STAFF_BRIDGE_URL}
/webhooks/staff_bridge/<operation>`` with ``X-Bridge-Secret``). Order of work, so
nothing is lost and nothing is claimed falsely:

* every line staff put into the chat (the "has joined" notice, a message, the "the
  assistant is back" notice) is stored and audited first (:mod:`bot.core.store.chat`;
  audit detail carries ids, never the text), then sent through the bridge;
* the answer says whether it reached the patient's open chat. If not, the dashboard
  says so and shows the contact details given; the line goes out by itself if the
  patient's browser comes back within the session;
* if Rasa cannot be reached the line is marked failed and staff are told to try
  again: it never enters the conversation and is never sent later.

Only web-chat (socket.io) conversations can be taken over, and one staff member at a
time holds a chat (a partial unique index); any staff member may hand it back, so a
chat is never stranded when its holder goes home. Taking a chat over also takes the case
(:func:`bot.dashboard.staff.cases.claim`): assigned to whoever took over if nobody had it, and in
progress if it was new.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, Protocol

import aiohttp
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.core.channel_names import Channel
from bot.core.clinic import Clinic
from bot.core.store import chat
from bot.core.store.models import AuditEvent, AuditKind, ChatLineKind, ChatTakeover, Escalation, StaffChatLine, utcnow
from bot.dashboard.staff import cases

logger = logging.getLogger(__name__)

WEB_CHAT = Channel.socketio.value
SECRET_HEADER = "X-Bridge-Secret"
BRIDGE_PATH = "/webhooks/staff_bridge/"
MAX_MESSAGE_CHARS = 2000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Staff(Protocol):
    """Who acts (``bot.dashboard.web.auth.StaffIdentity`` fits)."""

    id: int
    username: str
    display_name: str


class TakeoverError(Exception):
    """A takeover request refused, with an HTTP status, a code and a message for staff."""

    status = 409
    code = "conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EscalationNotFound(TakeoverError):
    status, code = 404, "not_found"


class NotWebChat(TakeoverError):
    status, code = 409, "not_web_chat"


class HeldByColleague(TakeoverError):
    status, code = 409, "held_by_colleague"


class NotHolding(TakeoverError):
    status, code = 409, "not_holding"


class InvalidMessage(TakeoverError):
    status, code = 400, "bad_request"


class ChatServerUnavailable(TakeoverError):
    status, code = 503, "chat_server_unavailable"


class BridgeUnavailable(Exception):
    """The Rasa server did not answer the bridge call usefully."""


@dataclass(frozen=True)
class BridgeAnswer:
    """A bridge call's HTTP status and JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def error(self) -> str:
        return str(self.body.get("error") or "")


class Bridge:
    """Client of the Rasa server's staff bridge."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, secret: str, timeout: float = 10.0) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + BRIDGE_PATH
        self.secret = secret
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(self, operation: str, body: dict[str, Any]) -> BridgeAnswer:
        """POST ``body`` to ``operation``; 4xx answers are returned, anything else raises :class:`BridgeUnavailable`."""
        try:
            async with self.http.post(
                self.url + operation, json=body, headers={SECRET_HEADER: self.secret}, timeout=self.timeout,
                allow_redirects=False,
            ) as reply:
                try:
                    data = await reply.json(content_type=None)
                except ValueError:
                    data = {}
                status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise BridgeUnavailable(type(exc).__name__) from None
        if status >= 500 or status in (401, 403) or not isinstance(data, dict):
            logger.error("staff bridge %s answered %s", operation, status)
            raise BridgeUnavailable(f"status {status}")
        return BridgeAnswer(status, data)


def clean_message(text: Any) -> str:
    """Staff text made safe to send: control characters removed, trimmed, within the length limit."""
    if not isinstance(text, str):
        raise InvalidMessage("Write a message first.")
    text = CONTROL.sub(" ", unicodedata.normalize("NFC", text)).strip()
    if not text:
        raise InvalidMessage("Write a message first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidMessage(f"Messages can be up to {MAX_MESSAGE_CHARS} characters; this one has {len(text)}.")
    return text


def shown_name(staff: Staff) -> str:
    """The name the patient sees."""
    return (staff.display_name or staff.username).strip()[:100]


def joined_text(name: str, clinic: Clinic) -> str:
    """The notice the patient sees when staff take over."""
    return (
        f"{name} from {clinic.name} has joined the chat. You're now talking with a member of our team, "
        "not the automated assistant."
    )


def left_text(name: str, clinic: Clinic) -> str:
    """The notice the patient sees when staff hand back."""
    return (
        f"{name} has left the chat, and the automated assistant is back. It can answer general questions "
        f"about dry needling. To talk to the team again, call {clinic.phone}."
    )


def line_status(line: StaffChatLine) -> str:
    """``delivered``, ``waiting`` (kept for the patient's return), ``failed`` or ``sending``."""
    if line.failed_at is not None:
        return "failed"
    if line.delivered_at is not None:
        return "delivered"
    return "waiting" if line.logged_at is not None else "sending"


def line_dict(line: StaffChatLine) -> dict[str, Any]:
    """A line as the API shows it."""
    return {
        "id": line.id,
        "kind": getattr(line.kind, "value", line.kind),
        "author": line.author_name,
        "text": line.body,
        "at": _iso(line.created_at),
        "status": line_status(line),
        "delivered_at": _iso(line.delivered_at),
    }


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


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


class TakeoverService:
    """Take over, write into and hand back web-chat conversations."""

    def __init__(self, sessions: sessionmaker, bridge: Bridge, clinic: Clinic) -> None:
        self.sessions = sessions
        self.bridge = bridge
        self.clinic = clinic

    # ---- reading ----------------------------------------------------------------------------------

    async def state(self, escalation_id: str, staff: Staff, ask_chat_server: bool = True) -> TakeoverState:
        """The takeover, its lines and (if asked) whether the patient's chat is open."""
        async with self.sessions() as session:
            escalation = await self._escalation(session, escalation_id)
            takeover = await chat.active_takeover(session, escalation.sender_id)
            lines = await chat.lines_of(session, escalation_id)
        state = TakeoverState(
            escalation_id=escalation_id,
            web_chat=escalation.channel == WEB_CHAT,
            contact={
                "name": escalation.contact_name, "method": escalation.contact_method,
                "detail": escalation.contact_detail, "consent": escalation.consent_given,
            },
            lines=[line_dict(line) for line in lines],
        )
        if takeover is not None and takeover.escalation_id == escalation_id:
            state.holder = _holder(takeover)
            state.mine = takeover.staff_username == staff.username
        if state.web_chat and ask_chat_server:
            try:
                answer = await self.bridge.call("presence", {"sender_id": escalation.sender_id})
            except BridgeUnavailable:
                return state
            if answer.ok:
                state.connected = bool(answer.body.get("connected"))
                state.paused = bool(answer.body.get("paused"))
                if takeover is not None and answer.body.get("known") and not state.paused:
                    # The chat server has the assistant answering again (a new session after a long silence).
                    await self._close(takeover, by="assistant")
                    state.holder, state.mine = None, False
        return state

    # ---- acting -----------------------------------------------------------------------------------

    async def take_over(self, escalation_id: str, staff: Staff) -> Sent:
        """Pause the assistant in the escalation's chat and tell the patient who joined."""
        name = shown_name(staff)
        now = utcnow()
        try:
            async with self.sessions() as session:
                async with session.begin():
                    escalation = await self._escalation(session, escalation_id)
                    if escalation.channel != WEB_CHAT:
                        raise NotWebChat("Only conversations in the website chat can be taken over.")
                    current = await chat.active_takeover(session, escalation.sender_id)
                    if current is not None:
                        raise HeldByColleague(_held_message(current, staff))
                    takeover = await chat.start_takeover(
                        session, escalation_id=escalation_id, sender_id=escalation.sender_id, user_id=staff.id,
                        username=staff.username, name=name, now=now,
                    )
                    line = await self._line(session, escalation, takeover.id, ChatLineKind.joined, staff,
                                            joined_text(name, self.clinic), now)
                    self._audit(session, AuditKind.chat_taken_over, escalation, staff,
                                {"takeover_id": takeover.id, "line_id": line.id})
        except IntegrityError:
            raise HeldByColleague("A colleague took this chat over a moment ago. Reload to see who.") from None
        try:
            answer = await self.bridge.call("takeover", {"sender_id": escalation.sender_id, "line_id": line.id})
        except BridgeUnavailable:
            await self._undo(takeover, line)
            raise ChatServerUnavailable("The chat server did not answer, so the chat was not taken over. Try again.")
        if not answer.ok:
            await self._undo(takeover, line)
            raise _refusal(answer)
        logger.info("escalation %s: chat taken over by %s", escalation_id, staff.username)
        await cases.claim(self.sessions, escalation_id, staff)
        return await self._sent(line.id, answer)

    async def send(self, escalation_id: str, staff: Staff, text: Any) -> Sent:
        """Put a staff message into a chat this staff member holds."""
        body = clean_message(text)
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                escalation = await self._escalation(session, escalation_id)
                takeover = await chat.active_takeover(session, escalation.sender_id)
                if takeover is None or takeover.escalation_id != escalation_id:
                    raise NotHolding("Take the chat over first: the assistant is answering this patient.")
                if takeover.staff_username != staff.username:
                    raise NotHolding(f"{takeover.staff_name} has this chat; only they can write in it.")
                line = await self._line(session, escalation, takeover.id, ChatLineKind.message, staff, body, now)
                self._audit(session, AuditKind.chat_message_sent, escalation, staff,
                            {"takeover_id": takeover.id, "line_id": line.id, "chars": len(body)})
        try:
            answer = await self.bridge.call("message", {"sender_id": escalation.sender_id, "line_id": line.id})
        except BridgeUnavailable:
            await self._fail(line)
            raise ChatServerUnavailable("The chat server did not answer, so the message was not sent. Try again.")
        if answer.status == 409 and answer.error == "not_paused":
            await self._fail(line)
            await self._close(takeover, by="assistant")
            raise NotHolding(
                "The assistant has this chat again (the patient started a new session), so the message was not "
                "sent. Take the chat over again to write."
            )
        if not answer.ok:
            await self._fail(line)
            raise _refusal(answer)
        return await self._sent(line.id, answer)

    async def hand_back(self, escalation_id: str, staff: Staff) -> Sent:
        """Resume the assistant in the chat, telling the patient. Any staff member may hand back."""
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                escalation = await self._escalation(session, escalation_id)
                takeover = await chat.active_takeover(session, escalation.sender_id)
                if takeover is None or takeover.escalation_id != escalation_id:
                    raise NotHolding("Nobody from the clinic has this chat: the assistant is already answering.")
                line = await self._line(session, escalation, takeover.id, ChatLineKind.left, staff,
                                        left_text(takeover.staff_name, self.clinic), now)
        try:
            answer = await self.bridge.call("handback", {"sender_id": escalation.sender_id, "line_id": line.id})
        except BridgeUnavailable:
            await self._fail(line)
            raise ChatServerUnavailable("The chat server did not answer, so the chat was not handed back. Try again.")
        if not answer.ok:
            await self._fail(line)
            if answer.status != 404:
                raise _refusal(answer)
            # The chat server no longer has the conversation: nothing is paused there; close the takeover.
        async with self.sessions() as session:
            async with session.begin():
                await chat.end_takeover(session, takeover.id, by=staff.username, now=utcnow())
                self._audit(session, AuditKind.chat_handed_back, escalation, staff,
                            {"takeover_id": takeover.id, "line_id": line.id})
        logger.info("escalation %s: chat handed back by %s", escalation_id, staff.username)
        return await self._sent(line.id, answer)

    # ---- helpers ----------------------------------------------------------------------------------

    async def _escalation(self, session: Any, escalation_id: str) -> Escalation:
        escalation = await session.get(Escalation, escalation_id)
        if escalation is None:
            raise EscalationNotFound("No escalation with this id.")
        return escalation

    async def _line(
        self, session: Any, escalation: Escalation, takeover_id: int, kind: ChatLineKind, staff: Staff, body: str,
        now: datetime,
    ) -> StaffChatLine:
        return await chat.add_line(
            session, escalation_id=escalation.id, takeover_id=takeover_id, sender_id=escalation.sender_id, kind=kind,
            username=staff.username, name=shown_name(staff), body=body, now=now,
        )

    @staticmethod
    def _audit(session: Any, kind: AuditKind, escalation: Escalation, staff: Staff, detail: dict[str, Any]) -> None:
        session.add(AuditEvent(
            kind=kind, escalation_id=escalation.id, sender_id=escalation.sender_id, actor=staff.username,
            detail=detail,
        ))

    async def _fail(self, line: StaffChatLine) -> None:
        async with self.sessions() as session:
            async with session.begin():
                await chat.mark_failed(session, line.id, utcnow())

    async def _undo(self, takeover: ChatTakeover, line: StaffChatLine) -> None:
        await self._fail(line)
        await self._close(takeover, by="system")

    async def _close(self, takeover: ChatTakeover, by: str) -> None:
        async with self.sessions() as session:
            async with session.begin():
                await chat.end_takeover(session, takeover.id, by=by, now=utcnow())

    async def _sent(self, line_id: int, answer: BridgeAnswer) -> Sent:
        async with self.sessions() as session:
            line = await chat.get_line(session, line_id)
        return Sent(line_dict(line), bool(answer.body.get("delivered")), bool(answer.body.get("connected")))


def _holder(takeover: ChatTakeover) -> dict[str, Any]:
    return {"name": takeover.staff_name, "username": takeover.staff_username, "since": _iso(takeover.started_at)}


def _held_message(current: ChatTakeover, staff: Staff) -> str:
    if current.staff_username == staff.username:
        return "You already have this chat."
    return f"{current.staff_name} has this chat. They, or anyone, can hand it back to the assistant first."


def _refusal(answer: BridgeAnswer) -> TakeoverError:
    if answer.error in ("unknown_conversation", "unknown_line"):
        return EscalationNotFound("The chat server has no such conversation any more.")
    if answer.error == "not_a_web_chat":
        return NotWebChat("Only conversations in the website chat can be taken over.")
    logger.error("staff bridge refused a call: %s %s", answer.status, answer.error)
    return ChatServerUnavailable("The chat server refused the request. Try again, or call the patient.")
