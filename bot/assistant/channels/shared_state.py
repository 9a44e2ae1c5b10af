"""What the patient channels share between Rasa replicas: in Redis when ``REDIS_URL`` is set.

With one Rasa process everything below lives in its memory, as before. With several
replicas behind a load balancer (socket.io sticky by cookie) each replica holds only its own
sockets, so three things move to the Redis of ``REDIS_URL`` (the one Rasa's lock store uses):

* **events to sockets**: the socket.io server's client manager is python-socketio's
  ``AsyncRedisManager`` (:class:`ReplicaRedisManager`): an emit is handled on this replica
  first, then published on a Redis channel that every replica's manager listens to, so a
  staff line sent to replica A reaches the patient's socket on replica B;
* **rate limits**: the per-sender and per-address token buckets
  (:mod:`bot.assistant.channels.limits`) are Redis hashes updated by one Lua script, so all
  replicas count together. Redis failing never refuses a message: the limit is skipped
  (fail open), logged, and the health flag says so;
* **presence**: which sockets are open for a conversation (:class:`RedisPresence`), a sorted
  set per conversation whose members expire unless their replica refreshes them, so a crashed
  replica's sockets are forgotten within :data:`PRESENCE_TTL_SECONDS`. Any replica can then
  tell whether the patient's chat is open somewhere (the staff bridge's ``connected``).

Whether staff hold a conversation is not duplicated here: it is the tracker's
``ConversationPaused``, in the tracker store every replica already shares.

Every Redis call has a short timeout (:data:`OPERATION_TIMEOUT_SECONDS`); a failure marks the
URL's :class:`RedisHealth` failing until the next call that works, and the socket.io channel's
health route (``GET /webhooks/socketio/``) reports it as ``"redis": "failing"``.
Keys never hold patient text: session ids, socket ids and address keys only (the events
published to other replicas are the bot's and staff's lines, as sent to the patient).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Protocol, TypeVar

from redis import asyncio as aioredis
from socketio import AsyncRedisManager

from bot.core.privacy import short_id

logger = logging.getLogger(__name__)

#: Prefix of every key and of the socket.io channel (Rasa's lock store uses ``dry_needling``).
KEY_PREFIX = "dry_needling:chat:"
#: The Redis pub/sub channel the replicas' socket.io managers share.
SOCKETIO_CHANNEL = "dry_needling:socketio"
#: Longest wait for one Redis call before the channel goes on without it.
OPERATION_TIMEOUT_SECONDS = 1.0
#: How long a socket counts as open after its replica last said so.
PRESENCE_TTL_SECONDS = 30.0
#: How often a replica re-announces its open sockets.
PRESENCE_REFRESH_SECONDS = 10.0

T = TypeVar("T")


class SharedStateUnavailable(Exception):
    """Redis did not answer (or refused) a call the caller cannot do without."""


class RedisHealth:
    """Whether Redis worked the last time it was used (or pinged): the health route's ``redis``."""

    def __init__(self) -> None:
        self.failing_since: Optional[float] = None
        self.last_error = ""

    @property
    def ok(self) -> bool:
        return self.failing_since is None

    def failed(self, what: str, error: BaseException) -> None:
        """Record a failed call; logged once when Redis starts failing, at debug level after that."""
        self.last_error = type(error).__name__
        if self.failing_since is None:
            self.failing_since = time.time()
            logger.error("Redis failed (%s: %s); shared chat state is degraded until it answers", what,
                         self.last_error)
        else:
            logger.debug("Redis still failing (%s: %s)", what, self.last_error)

    def worked(self) -> None:
        """Record a call that worked; logged when it ends a failure."""
        if self.failing_since is not None:
            logger.warning("Redis answers again after %.0f s", time.time() - self.failing_since)
            self.failing_since = None
            self.last_error = ""

    def report(self) -> str:
        return "ok" if self.ok else "failing"


_HEALTH: Dict[str, RedisHealth] = {}


def health_of(url: str) -> RedisHealth:
    """The process's health record for a Redis URL (shared by every channel using it)."""
    return _HEALTH.setdefault(url, RedisHealth())


class SharedRedis:
    """One Redis client for the channels' shared state, with its timeouts and health."""

    def __init__(
        self, url: str, prefix: str = KEY_PREFIX, timeout: float = OPERATION_TIMEOUT_SECONDS,
        health: Optional[RedisHealth] = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.health = health if health is not None else health_of(url)
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def run(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` within the timeout; its failure recorded and raised as :class:`SharedStateUnavailable`."""
        try:
            result = await asyncio.wait_for(call(), self.timeout)
        except (aioredis.RedisError, OSError, asyncio.TimeoutError) as error:
            self.health.failed(what, error)
            raise SharedStateUnavailable(what) from error
        self.health.worked()
        return result

    async def check(self) -> bool:
        """Ping Redis (for the health route); True if it answered."""
        try:
            await self.run("ping", self.client.ping)
        except SharedStateUnavailable:
            return False
        return True

    async def close(self) -> None:
        await self.client.close()
        await self.client.connection_pool.disconnect()


# ---- rate limits ------------------------------------------------------------------------------

#: Token buckets for every key at once: all must hold a token, or nothing is taken (a refused
#: message costs nothing). KEYS: the buckets; ARGV: each bucket's messages per minute. Redis's
#: own clock, so replicas with drifting clocks still agree. A bucket left alone for a minute
#: is full again, so it expires then.
TAKE_TOKENS = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local tokens = {}
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[i])
  local state = redis.call('HMGET', KEYS[i], 't', 'u')
  local t = tonumber(state[1])
  local u = tonumber(state[2])
  if t == nil or u == nil then
    t = capacity
    u = now
  end
  t = math.min(capacity, t + math.max(0, now - u) * capacity / 60)
  if t < 1 then
    return 0
  end
  tokens[i] = t
end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 't', tostring(tokens[i] - 1), 'u', tostring(now))
  redis.call('PEXPIRE', KEYS[i], 60000)
end
return 1
"""


class RedisMessageLimits:
    """The per-sender and per-address limits of :class:`bot.assistant.channels.limits.MessageLimits`,
    counted in Redis for every replica; Redis failing lets the message through (logged)."""

    def __init__(self, shared: SharedRedis, sender_per_minute: int, address_per_minute: int) -> None:
        if sender_per_minute < 1 or address_per_minute < 1:
            raise ValueError("a rate limit allows at least one message per minute")
        self.shared = shared
        self.sender_per_minute = sender_per_minute
        self.address_per_minute = address_per_minute
        self._script = shared.client.register_script(TAKE_TOKENS)

    async def admit(self, sender_id: str, address: Optional[str]) -> bool:
        """Count one message; False when either limit is reached. True (unlimited) when Redis fails."""
        keys = [self.shared.key("rate", "sender", sender_id), self.shared.key("rate", "address", address or "unknown")]
        try:
            allowed = await self.shared.run(
                "rate limit", lambda: self._script(keys=keys, args=[self.sender_per_minute, self.address_per_minute])
            )
        except SharedStateUnavailable:
            logger.warning("rate limit not checked for sender %s: Redis unavailable (message let through)",
                           short_id(sender_id))
            return True
        return bool(int(allowed))


# ---- presence ---------------------------------------------------------------------------------


class Presence(Protocol):
    """Which sockets are open for a conversation: this process's, or every replica's."""

    async def join(self, session_id: str, sid: str) -> None:
        """Socket ``sid`` is now in the conversation's room."""

    async def leave(self, session_id: str, sid: str) -> None:
        """Socket ``sid`` left the conversation's room (or disconnected)."""

    async def connected(self, session_id: str) -> bool:
        """Whether a socket (here, or on any replica) is in the conversation's room."""

    async def start(self) -> None:
        """Begin any background work (after the server started)."""

    async def stop(self) -> None:
        """End it (before the server stops)."""


def local_participants(sio: Any, namespace: str, session_id: str) -> bool:
    """Whether a socket of this process is in the conversation's room (the manager's room table)."""
    try:
        return any(True for _ in sio.manager.get_participants(namespace, session_id))
    except KeyError:
        return False


class LocalPresence:
    """One process: the socket.io manager's own room table is the record."""

    def __init__(self, sio: Any, namespace: str) -> None:
        self.sio = sio
        self.namespace = namespace

    async def join(self, session_id: str, sid: str) -> None:
        return None

    async def leave(self, session_id: str, sid: str) -> None:
        return None

    async def connected(self, session_id: str) -> bool:
        return local_participants(self.sio, self.namespace, session_id)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisPresence:
    """Several replicas: each conversation's open sockets in a Redis sorted set, scored by expiry.

    Members are ``<replica id>:<socket id>``; each replica re-announces its own every
    :data:`PRESENCE_REFRESH_SECONDS`, so the sockets of a replica that died drop out after
    :data:`PRESENCE_TTL_SECONDS`. This replica's own sockets are answered from its manager
    first (no Redis call, and right even while Redis is down).
    """

    def __init__(
        self, shared: SharedRedis, sio: Any, namespace: str, ttl: float = PRESENCE_TTL_SECONDS,
        refresh_every: float = PRESENCE_REFRESH_SECONDS, replica_id: Optional[str] = None,
    ) -> None:
        self.shared = shared
        self.sio = sio
        self.namespace = namespace
        self.ttl = ttl
        self.refresh_every = refresh_every
        self.replica_id = replica_id or uuid.uuid4().hex
        self.sockets: Dict[str, str] = {}  # this replica's sid -> session id
        self._refresher: Optional[asyncio.Task] = None

    def _key(self, session_id: str) -> str:
        return self.shared.key("presence", session_id)

    def _member(self, sid: str) -> str:
        return f"{self.replica_id}:{sid}"

    async def _announce(self, pairs: Dict[str, str]) -> None:
        expires = time.time() + self.ttl
        async with self.shared.client.pipeline(transaction=False) as pipe:
            for sid, session_id in pairs.items():
                pipe.zadd(self._key(session_id), {self._member(sid): expires})
                pipe.expire(self._key(session_id), int(self.ttl) + 1)
            await pipe.execute()

    async def join(self, session_id: str, sid: str) -> None:
        self.sockets[sid] = session_id
        try:
            await self.shared.run("presence join", lambda: self._announce({sid: session_id}))
        except SharedStateUnavailable:
            logger.warning("socket %s not announced to the other replicas yet: Redis unavailable", sid)

    async def leave(self, session_id: str, sid: str) -> None:
        if self.sockets.get(sid) == session_id:
            del self.sockets[sid]
        try:
            await self.shared.run("presence leave", lambda: self.shared.client.zrem(self._key(session_id),
                                                                                   self._member(sid)))
        except SharedStateUnavailable:
            logger.warning("socket %s left; Redis unavailable, so it is forgotten at its expiry", sid)

    async def connected(self, session_id: str) -> bool:
        if local_participants(self.sio, self.namespace, session_id):
            return True
        try:
            count = await self.shared.run(
                "presence", lambda: self.shared.client.zcount(self._key(session_id), time.time(), "+inf")
            )
        except SharedStateUnavailable:
            logger.warning("could not tell whether session %s is open on another replica: Redis unavailable",
                           short_id(session_id))
            return False
        return int(count) > 0

    async def refresh(self) -> None:
        """Re-announce this replica's open sockets (their expiry moves on)."""
        if not self.sockets:
            return
        try:
            await self.shared.run("presence refresh", lambda: self._announce(dict(self.sockets)))
        except SharedStateUnavailable:
            pass  # logged by the health record; the next refresh tries again

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_every)
            await self.refresh()

    async def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.ensure_future(self._refresh_forever())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None
        if self.sockets:
            pairs = dict(self.sockets)
            self.sockets.clear()

            async def forget() -> None:
                async with self.shared.client.pipeline(transaction=False) as pipe:
                    for sid, session_id in pairs.items():
                        pipe.zrem(self._key(session_id), self._member(sid))
                    await pipe.execute()

            try:
                await self.shared.run("presence stop", forget)
            except SharedStateUnavailable:
                pass  # they expire on their own


# ---- socket.io ----------------------------------------------------------------------------------

#: Set while an emit must reach the other replicas (a staff line for a socket held elsewhere).
_publish_required: contextvars.ContextVar[bool] = contextvars.ContextVar("publish_required", default=False)


class ReplicaRedisManager(AsyncRedisManager):
    """python-socketio's Redis manager, with its health recorded and an emit that can insist.

    ``AsyncRedisManager`` logs a failed publish and returns; an ordinary reply is handled on
    this replica first (where the patient's socket is), so that is right for it. A staff line
    for a socket held by another replica, though, must know it went nowhere:
    :meth:`emit_everywhere` raises :class:`SharedStateUnavailable` then, and the line waits
    for the patient's return.
    """

    def __init__(self, url: str, health: Optional[RedisHealth] = None, channel: str = SOCKETIO_CHANNEL) -> None:
        super().__init__(
            url, channel=channel, logger=logging.getLogger(__name__ + ".socketio"),
            redis_options={"socket_connect_timeout": OPERATION_TIMEOUT_SECONDS},
        )
        self.health = health if health is not None else health_of(url)

    async def _publish(self, data: Any) -> Any:
        result = await super()._publish(data)
        if result is None:
            self.health.failed("socket.io publish", ConnectionError("publish failed"))
            if _publish_required.get():
                raise SharedStateUnavailable("socket.io publish")
        else:
            self.health.worked()
        return result

    async def emit_everywhere(self, sio: Any, event: str, data: Any, room: str, namespace: str) -> None:
        """``sio.emit`` to ``room`` on every replica; raises :class:`SharedStateUnavailable` if unpublished."""
        token = _publish_required.set(True)
        try:
            await sio.emit(event, data, room=room, namespace=namespace)
        finally:
            _publish_required.reset(token)
