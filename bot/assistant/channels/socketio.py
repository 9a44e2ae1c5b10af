"""The website widget's channel: Rasa's standard socket.io protocol, hardened.

Same events and payloads as Rasa's ``SocketIOInput`` (``session_request`` /
``session_confirm``, ``user_uttered`` / ``bot_uttered``), so any standard Rasa
socket.io client keeps working. Differences:

* browsers may connect only from the allowed origins, and the CORS header is
  python-socketio's alone (:mod:`bot.assistant.channels.cors`);
* the server issues the session ids, signed (:mod:`bot.assistant.channels.sessions`). A
  ``session_request`` with an id this server issued resumes that conversation
  (when ``session_persistence`` is on); any other id gets a new one. Each socket
  is bound to one session: a ``user_uttered`` for another session is refused with
  a polite reply to that socket alone, and a message before any
  ``session_request`` first gets a session of its own. A socket therefore only
  ever joins, reads and writes its own conversation;
* packets, ids and metadata have size caps (:mod:`bot.assistant.channels.caps`), and each
  session and client address a rate limit (:mod:`bot.assistant.channels.limits`);
* malformed events are answered or ignored politely instead of raising;
* ``enter_room`` is awaited (a coroutine since python-socketio 5.10, which Rasa
  3.6's own channel does not await, so its replies never reach the browser);
* every message passes through :func:`bot.assistant.channels.guard.guard`, its metadata carrying a
  keyed hash of the client address (for :mod:`bot.core.escalation.flood`; never the client's own);
* staff can take a conversation over from the dashboard: the channel attaches a
  :class:`bot.assistant.channels.live_chats.LiveChats` to the app for the staff bridge
  (:mod:`bot.assistant.channels.staff_bridge`), a paused conversation gets no automated reply
  (and no fallback for the missing one) except the urgent guidance for a red flag, and staff lines that found the patient's
  chat closed are sent when the patient's browser resumes the session;
* with ``REDIS_URL`` set (several Rasa replicas, socket.io sticky by cookie at the load
  balancer) the server's client manager is python-socketio's ``AsyncRedisManager``, so an
  emit to a conversation's room reaches its socket on any replica; the rate limits and the
  record of open chats live in Redis too, and the health route (``GET /webhooks/socketio/``)
  adds ``"redis": "ok"`` or ``"failing"`` (:mod:`bot.assistant.channels.shared_state`).
  Without it everything stays in this process, as before;
* a curated FAQ answer's first ``bot_uttered`` part also carries the answer's short
  version and how many parts the answer has, ``"short": {"text": ..., "parts": n}``, and
  each later part its number, ``"short": {"part": i}`` (:class:`PatientSocketIOOutput`):
  the widget shows the short version first on a phone. ``text`` and the split into parts
  are Rasa's, and a standard client ignores the extra key;
* a curated FAQ answer's last ``bot_uttered`` part also carries what the answer rests on,
  ``"kb": {"title", "version", "reviewed", "sources": [{"name", "url"}]}``, resolved here
  from the response's ``metadata.kb`` and the source catalogue
  (:func:`bot.core.knowledge.citations.answer_citation`; ``url`` only for https sources): the
  widget shows it as a sources line under the answer. Other replies carry no ``kb``.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage, decode_bearer_token
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot.assistant.channels.caps import MAX_REQUEST_BYTES, parse_metadata
from bot.assistant.channels.cors import CorsPolicy
from bot.assistant.channels.guard import guard
from bot.assistant.channels.limits import client_address, message_limits
from bot.assistant.channels.live_chats import ChatLines, LiveChats, urgent_guidance
from bot.assistant.channels.replies import rate_limited_reply, session_refused_reply
from bot.assistant.channels.sessions import SessionTokens
from bot.assistant.channels.shared_state import ReplicaRedisManager, RedisPresence, SharedRedis
from bot.assistant.nlg import SHORT_TEXT
from bot.core import process
from bot.core.channel_names import Channel
from bot.core.clinic import load_clinic
from bot.core.escalation.flood import with_client_key
from bot.core.knowledge.catalog import FAQ_PREFIX
from bot.core.knowledge.citations import answer_citation
from bot.core.privacy import short_id
from bot.core.settings import Settings

logger = logging.getLogger(__name__)

SESSION_KEY = "session_id"
ADDRESS_KEY = "address"
#: The ``bot_uttered`` key that marks the parts of an answer with a short version.
SHORT_KEY = "short"
#: The ``bot_uttered`` key that carries a curated answer's sources, version and review date.
KB_KEY = "kb"


class PatientSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output; the parts of a curated FAQ answer say so (``"short"``, ``"kb"``).

    Rasa sends a text as one ``bot_uttered`` per paragraph (split on blank lines), the
    buttons on the last. Those payloads are unchanged but for extra keys: with a short
    version, the first part gets ``short: {"text": <short version>, "parts": <number of
    parts>}``, each later part ``short: {"part": <its number, 2 to n>}``, so a client can
    tell which parts form the answer; and the last part of an FAQ answer gets ``kb``, its
    sources, version and review date (:func:`bot.core.knowledge.citations.answer_citation`).
    """

    def __init__(self, sio: AsyncServer, bot_message_evt: Text) -> None:
        super().__init__(sio, bot_message_evt)
        self._marks: List[Dict[Text, Any]] = []

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        if self._marks and isinstance(response, dict) and "text" in response:
            extra = self._marks.pop(0)
            if extra:
                response = {**response, **extra}
        await super()._send_message(socket_id, response)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        """Rasa's parts, marked when the message is a curated answer."""
        self._marks = self._marks_for(text, kwargs)
        try:
            await super().send_text_message(recipient_id, text, **kwargs)
        finally:
            self._marks = []

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        """Rasa's parts with the buttons on the last, marked when the message is a curated answer."""
        self._marks = self._marks_for(text, kwargs)
        try:
            await super().send_text_with_buttons(recipient_id, text, buttons, **kwargs)
        finally:
            self._marks = []

    @staticmethod
    def _marks_for(text: Text, kwargs: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        """The extra keys of each part Rasa will send for ``text`` (none for an ordinary reply)."""
        if not isinstance(text, str):
            return []
        parts = len(text.strip().split("\n\n"))  # Rasa's own split (SocketIOOutput)
        marks: List[Dict[Text, Any]] = [{} for _ in range(parts)]
        short = kwargs.get(SHORT_TEXT)
        if isinstance(short, str) and short.strip():
            marks[0][SHORT_KEY] = {"text": short.strip(), "parts": parts}
            for number in range(2, parts + 1):
                marks[number - 1][SHORT_KEY] = {"part": number}
        citation = PatientSocketIOOutput._citation(kwargs)
        if citation:
            marks[-1][KB_KEY] = citation
        return marks if any(marks) else []

    @staticmethod
    def _citation(kwargs: Dict[Text, Any]) -> Optional[Dict[Text, Any]]:
        """The sources line of a curated FAQ answer (from its ``metadata.kb``), else None."""
        name = kwargs.get("utter_action")
        if not isinstance(name, str) or not name.startswith(FAQ_PREFIX):
            return None
        metadata = kwargs.get("metadata")
        if not isinstance(metadata, dict):
            return None
        try:
            return answer_citation(metadata.get("kb"))
        except Exception:  # an unreadable catalogue must not cost the patient the answer itself
            logger.exception("could not resolve the sources of %s", name)
            return None


class PatientSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel with origin checks, bound signed sessions, limits and a never-silent reply."""

    @classmethod
    def name(cls) -> Text:
        """Keeps Rasa's channel name, so the path and events are unchanged."""
        return Channel.socketio.value

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Create the channel from its credentials entry; the rest comes from the environment."""
        return cls.from_settings(process.settings(), credentials)

    @classmethod
    def from_settings(
        cls, settings: Settings, credentials: Optional[Dict[Text, Any]] = None
    ) -> "PatientSocketIOInput":
        """Create the channel from the process settings and its credentials entry (events, path, JWT)."""
        credentials = dict(credentials or {})
        if credentials.pop("cors_allowed_origins", None) is not None:
            logger.warning("credentials.yml: cors_allowed_origins is ignored; set CORS_ALLOWED_ORIGINS instead")
        channel = super().from_credentials(credentials)
        channel.clinic = load_clinic(settings.clinic_config)
        channel.max_chars = settings.max_message_chars
        channel.cors = CorsPolicy.of(settings.cors_origins)
        channel.tokens = SessionTokens(settings.session_secret)
        channel.key_secret = settings.session_secret
        channel.redis_url = settings.redis_url
        channel.shared = SharedRedis(settings.redis_url) if settings.redis_url else None
        channel.limits = message_limits(settings, channel.shared)
        channel.chat_lines = ChatLines(settings.database_url, settings.store_timeout_seconds)
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The socket.io endpoint, with the same events as Rasa's own channel."""
        shared = self.shared
        manager = {"client_manager": ReplicaRedisManager(self.redis_url, shared.health)} if shared else {}
        sio = AsyncServer(
            async_mode="sanic", max_http_buffer_size=MAX_REQUEST_BYTES, **manager, **self.cors.socketio_options()
        )
        presence = RedisPresence(shared, sio, self.namespace or "/") if shared else None
        self.live = LiveChats(sio, self.namespace, self.bot_message_evt, self.chat_lines, presence)
        handler = guard(
            on_new_message, self.clinic, self.max_chars, held=self.live.held,
            urgent_guidance=urgent_guidance(self.clinic),
        )
        blueprint = LiveSocketBlueprint(self.live, sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio
        namespace = self.namespace

        async def reply(sid: Text, text: str) -> None:
            await sio.emit(self.bot_message_evt, {"text": text}, room=sid, namespace=namespace)

        async def bind(sid: Text, claimed: Any) -> str:
            """Bind the socket to the session it asked for if this server issued it, else to a new one."""
            resumed = self.session_persistence and self.tokens.verify(claimed)
            session_id = claimed if resumed else self.tokens.issue()
            async with sio.session(sid, namespace=namespace) as state:
                previous = state.get(SESSION_KEY)
                state[SESSION_KEY] = session_id
            if previous and previous != session_id:
                await sio.leave_room(sid, previous, namespace=namespace)
                await self.live.presence.leave(previous, sid)
            await sio.enter_room(sid, session_id, namespace=namespace)
            await self.live.presence.join(session_id, sid)
            if claimed and not resumed:
                logger.info("socket %s asked for a session this server did not issue; issued a new one", sid)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)
            return session_id

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            if shared is None:
                return response.json({"status": "ok"})
            # Up either way (limits fail open, replies go out here); "degraded" says what is shared is not.
            redis_ok = await shared.check()
            return response.json({"status": "ok" if redis_ok else "degraded", "redis": shared.health.report()})

        @blueprint.listener("after_server_start")
        async def start_presence(_app: Any, _loop: Any) -> None:
            await self.live.presence.start()

        @blueprint.listener("before_server_stop")
        async def stop_presence(_app: Any, _loop: Any) -> None:
            await self.live.presence.stop()  # this replica's sockets withdrawn from Redis
            if shared is not None:
                await shared.close()

        @sio.on("connect", namespace=namespace)
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict]) -> bool:
            if self.jwt_key:
                token = auth.get("token") if isinstance(auth, dict) else None
                if not (token and decode_bearer_token(token, self.jwt_key, self.jwt_algorithm)):
                    return False
            request = environ.get("sanic.request")
            address = client_address(request) if request is not None else environ.get("REMOTE_ADDR")
            await sio.save_session(sid, {ADDRESS_KEY: address}, namespace=namespace)
            return True

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: Text) -> None:
            try:
                state = await sio.get_session(sid, namespace=namespace)
            except KeyError:
                return
            if state.get(SESSION_KEY):
                await self.live.presence.leave(state[SESSION_KEY], sid)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: Text, data: Any = None) -> None:
            claimed = data.get("session_id") if isinstance(data, dict) else None
            session_id = await bind(sid, claimed)
            if session_id == claimed:
                # A returning patient: staff lines written while their chat was closed go out now.
                await self.live.deliver_pending(session_id)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: Text, data: Any = None) -> None:
            if not isinstance(data, dict):
                logger.warning("ignored a malformed %s event (not an object)", self.user_message_evt)
                return
            state = await sio.get_session(sid, namespace=namespace)
            claimed = data.get("session_id") or None
            session_id = state.get(SESSION_KEY)
            if session_id is None:
                session_id = await bind(sid, claimed)
            elif claimed is not None and claimed != session_id:
                logger.warning(
                    "refused a message from socket %s for session %s: the socket is bound to %s",
                    sid,
                    short_id(str(claimed)),
                    short_id(session_id),
                )
                await reply(sid, session_refused_reply())
                return
            if not await self.limits.admit(session_id, state.get(ADDRESS_KEY)):
                logger.warning("rate limit reached for socket.io session %s", short_id(session_id))
                await reply(sid, rate_limited_reply(self.clinic))
                return
            metadata = parse_metadata(data.get(self.metadata_key))
            if metadata is None:
                logger.warning("dropped oversized metadata of a message in session %s", short_id(session_id))
                metadata = {}
            metadata = with_client_key(metadata, state.get(ADDRESS_KEY), self.key_secret)
            text = data.get("message")
            text = text if isinstance(text, str) else ("" if text is None else str(text))
            output = PatientSocketIOOutput(sio, self.bot_message_evt)
            await handler(UserMessage(text, output, session_id, input_channel=self.name(), metadata=metadata))

        return blueprint


class LiveSocketBlueprint(SocketBlueprint):
    """Rasa's socket.io blueprint that also attaches the channel's open chats to the app for the staff bridge."""

    def __init__(self, live: LiveChats, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx.live = live

    def register(self, app: Any, options: Dict[Text, Any]) -> None:
        """Attach the Socket.IO server and the open-chats registry to ``app``."""
        super().register(app, options)
        self.ctx.live.attach(app)
