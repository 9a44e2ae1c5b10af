"""Rasa's Redis lock store, made atomic, and failing open to a lock in this process while Redis does not answer.

Several Rasa replicas share a conversation through the tracker store (PostgreSQL) and take
turns in it through Rasa's lock store in Redis (``REDIS_URL``): two messages of one
conversation on two replicas are handled one after the other. Rasa's ``RedisLockStore``
raises when Redis is down, and then no message is handled at all: the patient gets the
channel's fallback, and a red flag's escalation is never recorded, since recording it is
an action of the turn that never ran.

:class:`FailOpenRedisLockStore` keeps the conversation going instead: when Redis cannot
issue a ticket, the turn takes a lock in this process (Rasa's ``InMemoryLockStore``) and
runs, and the failure is logged. What is lost while Redis is down is the ordering across
replicas only (haproxy's cookie keeps a socket.io client on one replica anyway); the
tracker store, escalations and replies work as usual.

Rasa 3.6's ``RedisLockStore`` also reads, changes and writes a conversation's ticket lock in
separate Redis calls (Rasa issue 9213; the atomic ``ConcurrentRedisLockStore`` is not in
Rasa Open Source). Two replicas taking a ticket, or one releasing its ticket while another
takes one, could overwrite each other: the fault tests saw the second of two messages sent
at once to two replicas get the fallback and vanish from the conversation. Here every such
change (issuing a ticket, dropping expired ones, releasing one) runs under a short Redis
mutex per conversation (redis-py's ``Lock``: ``SET NX PX``, released by a script).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager, contextmanager
from typing import Any, AsyncGenerator, Iterator, Optional, Text, Union

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

#: Longest a change to one conversation's ticket lock may hold the mutex, and wait for it (seconds).
MUTEX_SECONDS = 5.0


def _redis_failed(error: BaseException) -> bool:
    """Whether ``error`` (Rasa wraps it in ``LockError``) comes from Redis not answering."""
    seen: Optional[BaseException] = error
    while seen is not None:
        if isinstance(seen, (RedisError, ConnectionError, TimeoutError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class FailOpenRedisLockStore(RedisLockStore):
    """``RedisLockStore`` whose :meth:`lock` falls back to a lock in this process when Redis fails."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)
        self.local = InMemoryLockStore()

    @contextmanager
    def _mutex(self, conversation_id: Text) -> Iterator[None]:
        """Hold this conversation's mutex while its ticket lock is read, changed and written."""
        with self.red.lock(self.key_prefix + "mutex:" + conversation_id, timeout=MUTEX_SECONDS,
                           blocking_timeout=MUTEX_SECONDS):
            yield

    def issue_ticket(self, conversation_id: Text, lock_lifetime: Union[float, int] = LOCK_LIFETIME) -> int:
        try:
            with self._mutex(conversation_id):
                return super().issue_ticket(conversation_id, lock_lifetime)
        except LockError:
            raise
        except Exception as error:  # noqa: BLE001 - as Rasa's own issue_ticket: any failure is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: Text) -> None:
        with self._mutex(conversation_id):
            super().update_lock(conversation_id)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        # Releasing the ticket and deleting the lock when nobody waits is one step: a ticket issued
        # in between would otherwise be deleted with the lock.
        with self._mutex(conversation_id):
            super().cleanup(conversation_id, ticket_number)

    @asynccontextmanager
    async def lock(
        self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = 1
    ) -> AsyncGenerator[TicketLock, None]:
        try:
            ticket = self.issue_ticket(conversation_id, lock_lifetime)
        except LockError as error:
            if not _redis_failed(error):
                raise
            logger.error("Redis lock store unavailable (%s): this turn takes a lock in this process only",
                         type(error.__cause__ or error.__context__ or error).__name__)
            async with self.local.lock(conversation_id, lock_lifetime, wait_time_in_seconds) as local:
                yield local
            return
        try:
            yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
        finally:
            try:
                self.cleanup(conversation_id, ticket)
            except RedisError as error:
                # The ticket expires with its lifetime (TICKET_LOCK_LIFETIME): the next turn waits that long at most.
                logger.error("Redis lock store: could not release a ticket (%s)", type(error).__name__)


def fail_open(lock_store: Any) -> Any:
    """The endpoints' lock store with Redis made :class:`FailOpenRedisLockStore`; any other unchanged."""
    if isinstance(lock_store, EndpointConfig) and lock_store.type == "redis":
        return FailOpenRedisLockStore(lock_store)
    return lock_store
