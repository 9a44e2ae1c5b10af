"""The patient chats this Rasa process holds open, as the staff bridge needs them.

The widget's socket.io channel (:mod:`bot.assistant.channels.socketio`) owns the sockets; the
staff bridge (:mod:`bot.assistant.channels.staff_bridge`) must reach them to put a staff line
into a patient's chat. Rather than one importing the other, the channel creates a
:class:`LiveChats` and attaches it to the Sanic app (``app.ctx.live_chats``) when its
blueprint is registered, and the bridge finds it there.

A staff line goes out as Rasa's standard ``bot_uttered`` event with the usual
``text`` (any standard client shows it) plus ``metadata.staff`` (name and whether
the line is a joined notice, a message or a handed-back notice), which the project's
widget uses to show it as a person's message. A line is claimed in the store before
it is emitted, so it reaches the patient once; lines that found no open chat are
emitted when the patient's browser resumes its session (:meth:`deliver_pending`).

Several Rasa replicas (``REDIS_URL`` set): the channel's ``AsyncServer`` has python-socketio's
Redis manager (:class:`bot.assistant.channels.shared_state.ReplicaRedisManager`), so an emit to
the conversation's room reaches the patient's socket on whichever replica holds it, and
:meth:`connected` asks the presence record every replica keeps in Redis
(:class:`bot.assistant.channels.shared_state.RedisPresence`); with one process it is the
manager's own room table (:class:`bot.assistant.channels.shared_state.LocalPresence`). A line
for a socket on another replica is delivered only if the publish to Redis worked; otherwise
it is released and waits for the patient's return, like a line for a closed chat.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import yaml
from sqlalchemy.orm import sessionmaker

from bot.assistant.channels.shared_state import (
    LocalPresence,
    Presence,
    ReplicaRedisManager,
    local_participants,
)
from bot.core.clinic import Clinic
from bot.core.privacy import short_id
from bot.core.settings import REPO_ROOT
from bot.core.store import chat
from bot.core.store.db import bounded, process_engine, session_factory
from bot.core.store.models import StaffChatLine, utcnow

logger = logging.getLogger(__name__)

SAFETY_RESPONSES = REPO_ROOT / "data" / "responses" / "safety.yml"


def urgent_guidance(clinic: Clinic, responses: Path = SAFETY_RESPONSES) -> str:
    """The assistant's urgent red-flag guidance (``utter_red_flag_urgent``), filled in for the clinic.

    Read from the curated, reviewed response file rather than written again here, so a
    patient held by staff gets exactly the wording the assistant would give.
    """
    data = yaml.safe_load(responses.read_text(encoding="utf-8"))
    text = " ".join(str(data["responses"]["utter_red_flag_urgent"][0]["text"]).split())
    return text.format_map(clinic.template_values())


def staff_payload(line: StaffChatLine) -> dict[str, Any]:
    """The ``bot_uttered`` payload of a staff line: standard ``text``, plus who wrote it."""
    kind = getattr(line.kind, "value", line.kind)
    return {"text": line.body, "metadata": {"staff": {"name": line.author_name, "event": kind}}}


def staff_metadata(line: StaffChatLine) -> dict[str, Any]:
    """The metadata kept with the line's ``BotUttered`` event in the tracker."""
    kind = getattr(line.kind, "value", line.kind)
    return {"staff": {"name": line.author_name, "username": line.author_username, "event": kind, "line_id": line.id}}


class ChatLines:
    """The store of staff lines, opened lazily inside the running event loop."""

    def __init__(self, database_url: str, timeout: float = 8.0) -> None:
        self.database_url = database_url
        self.timeout = timeout
        self._sessions: Optional[sessionmaker] = None

    def sessions(self) -> sessionmaker:
        """The session factory (the engine is created on first use)."""
        if self._sessions is None:
            self._sessions = session_factory(process_engine(self.database_url))
        return self._sessions


class LiveChats:
    """Open patient chats of this process: who is connected, and sending staff lines to them."""

    def __init__(
        self, sio: Any, namespace: Optional[str], event: str, lines: ChatLines, presence: Optional[Presence] = None,
    ) -> None:
        self.sio = sio
        self.namespace = namespace or "/"
        self.event = event
        self.lines = lines
        self.presence: Presence = presence if presence is not None else LocalPresence(sio, self.namespace)
        self.app: Any = None

    def attach(self, app: Any) -> None:
        """Make this registry the app's (``app.ctx.live_chats``)."""
        self.app = app
        app.ctx.live_chats = self

    @staticmethod
    def of(app: Any) -> Optional["LiveChats"]:
        """The registry attached to ``app``, if the web-chat channel is configured."""
        return getattr(app.ctx, "live_chats", None)

    async def connected(self, session_id: str) -> bool:
        """Whether a socket is in the conversation's room (of this process, or of any replica with Redis)."""
        return await self.presence.connected(session_id)

    async def held(self, session_id: str) -> Optional[dict[str, Any]]:
        """The latest message's parse data while staff hold the conversation (``ConversationPaused``), else None."""
        agent = getattr(getattr(self.app, "ctx", None), "agent", None)
        if agent is None or getattr(agent, "tracker_store", None) is None:
            return None
        tracker = await agent.tracker_store.retrieve(session_id)
        if tracker is None or not tracker.is_paused():
            return None
        latest = tracker.latest_message
        return dict(latest.parse_data) if latest is not None else {}

    async def deliver(self, line: StaffChatLine) -> bool:
        """Emit a logged line to the patient's open chat; True if it reached an open chat (now or earlier)."""
        if not await self.connected(line.sender_id):
            return False
        here = local_participants(self.sio, self.namespace, line.sender_id)
        sessions = self.lines.sessions()
        async with sessions() as session:
            async with session.begin():
                claimed = await chat.claim_delivery(session, line.id, utcnow())
        if not claimed:
            async with sessions() as session:
                current = await chat.get_line(session, line.id)
            return bool(current is not None and current.delivered_at is not None)
        try:
            manager = self.sio.manager
            if not here and isinstance(manager, ReplicaRedisManager):
                # The socket is on another replica: only a publish that worked counts as delivered.
                await manager.emit_everywhere(self.sio, self.event, staff_payload(line), line.sender_id, self.namespace)
            else:
                await self.sio.emit(self.event, staff_payload(line), room=line.sender_id, namespace=self.namespace)
        except Exception:  # noqa: BLE001 - the socket (or Redis) went away mid-emit: keep the line for their return
            logger.exception("could not emit staff line %s to session %s", line.id, short_id(line.sender_id))
            async with sessions() as session:
                async with session.begin():
                    await chat.release_delivery(session, line.id)
            return False
        logger.info("staff line %s delivered to session %s", line.id, short_id(line.sender_id))
        return True

    async def deliver_pending(self, session_id: str) -> int:
        """Send the staff lines that found no open chat, now that the patient is back. Never raises."""
        try:
            return await bounded(self._deliver_pending(session_id), self.lines.timeout)
        except Exception as exc:  # noqa: BLE001 - the patient's chat works on without them; logged
            logger.error(
                "could not deliver waiting staff lines to session %s (%s)", short_id(session_id), type(exc).__name__
            )
            return 0

    async def _deliver_pending(self, session_id: str) -> int:
        async with self.lines.sessions()() as session:
            waiting = list(await chat.pending_lines(session, session_id, utcnow()))
        sent = 0
        for line in waiting:
            sent += await self.deliver(line)
        if waiting:
            logger.info("delivered %d of %d waiting staff lines to session %s", sent, len(waiting), short_id(session_id))
        return sent
