"""How fast one conversation, or one client address, may send messages.

Every message costs the Rasa server a model run and may notify staff, so a
script repeating a red flag, or one machine opening conversation after
conversation, is slowed down before Rasa sees the message. Both channels check
two limits, from the settings: per sender (``RATE_SENDER_PER_MINUTE``) and per
client address (``RATE_ADDRESS_PER_MINUTE``). A refused message gets a polite
reply from the channel (:func:`bot.assistant.channels.replies.rate_limited_reply`), never
silence and never an error page.

Each limit is a token bucket per key: a burst of up to ``per_minute`` messages,
then one more every ``60 / per_minute`` seconds. Buckets live in this process's
memory, least recently used first out once ``max_keys`` are held, so memory stays
bounded whatever ids a client invents.

With ``REDIS_URL`` set (several Rasa replicas behind a load balancer) the same buckets
live in Redis instead, so every replica counts together
(:class:`bot.assistant.channels.shared_state.RedisMessageLimits`); if Redis fails, the
limit is skipped for that message (fail open: logged, and the health route says so), never
the message. :func:`message_limits` picks one at start-up; the channels only call
:meth:`MessageLimiter.admit`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from sanic.request import Request

from bot.assistant.channels.shared_state import RedisMessageLimits, SharedRedis
from bot.core.settings import Settings

MAX_KEYS = 20_000


def client_address(request: Request) -> str:
    """The address a request came from, as far as this server can trust it.

    Sanic's ``remote_addr`` is the client behind a reverse proxy when Sanic is told
    to trust one (``PROXIES_COUNT``, ``REAL_IP_HEADER`` or ``FORWARDED_SECRET``);
    otherwise it is empty and the peer's own address is used. A forwarded header
    that Sanic was not told to trust is ignored, so a client cannot pick its key.
    """
    return request.remote_addr or request.ip


class RateLimiter:
    """A token bucket per key, in memory, with a bounded number of keys."""

    def __init__(
        self,
        per_minute: int,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("a rate limit allows at least one message per minute")
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - updated) * self.refill_per_second)

    def would_allow(self, key: str) -> bool:
        """Whether one more message under ``key`` is within the limit (nothing is consumed)."""
        return self._tokens(key, self._clock()) >= 1.0

    def take(self, key: str) -> bool:
        """Count one message under ``key``; False (and nothing counted) when over the limit."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            return False
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return True


class MessageLimiter(Protocol):
    """The per-sender and per-address limits as a channel sees them (memory or Redis)."""

    async def admit(self, sender_id: str, address: Optional[str]) -> bool:
        """Count one message from ``sender_id`` at ``address``; False when either limit is reached."""


@dataclass
class MessageLimits:
    """The per-sender and per-address limits a channel applies to each message."""

    per_sender: RateLimiter
    per_address: RateLimiter

    @classmethod
    def per_minute(cls, sender: int, address: int) -> "MessageLimits":
        """Limits from the settings' messages-per-minute figures."""
        return cls(per_sender=RateLimiter(sender), per_address=RateLimiter(address))

    def allow(self, sender_id: str, address: Optional[str]) -> bool:
        """Count one message from ``sender_id`` at ``address``; False when either limit is reached.

        A refused message counts against neither limit, so a patient who waits is
        answered again as soon as the busier of the two buckets has refilled.
        """
        address_key = address or "unknown"
        if not (self.per_sender.would_allow(sender_id) and self.per_address.would_allow(address_key)):
            return False
        self.per_sender.take(sender_id)
        self.per_address.take(address_key)
        return True

    async def admit(self, sender_id: str, address: Optional[str]) -> bool:
        """:meth:`allow`, as the :class:`MessageLimiter` the channels call."""
        return self.allow(sender_id, address)


def message_limits(settings: Settings, shared: Optional[SharedRedis] = None) -> MessageLimiter:
    """The settings' limits: in Redis when ``REDIS_URL`` is set (``shared``, or a client of its own), else here."""
    if settings.redis_url or shared is not None:
        return RedisMessageLimits(
            shared or SharedRedis(settings.redis_url),
            settings.sender_messages_per_minute, settings.address_messages_per_minute,
        )
    return MessageLimits.per_minute(settings.sender_messages_per_minute, settings.address_messages_per_minute)
