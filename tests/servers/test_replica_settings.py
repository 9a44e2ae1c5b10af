"""What a Rasa replica behind haproxy needs (bot/cluster.py): the proxy's address trusted only
when TRUSTED_PROXY_COUNT says so, and Rasa's Redis lock store going on without Redis."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import socket
import uuid

import aiohttp
import pytest
from rasa.core.lock import TicketLock
from rasa.utils.endpoints import EndpointConfig
from sanic import Sanic, response

from bot.assistant.servers.lock_store import FailOpenRedisLockStore, fail_open
from bot.assistant.servers.rasa import trust_proxies
from bot.launch import free_port
from tests.support.redis_server import redis_server  # noqa: F401 - pytest fixture
from tests.support.sanic_server import start_sanic


async def seen_address(count: int, forwarded: str) -> str:
    """The address a route sees for a request carrying ``X-Forwarded-For: forwarded``."""
    app = Sanic(f"proxies_{uuid.uuid4().hex}", configure_logging=False)
    app.register_listener(trust_proxies(count), "before_server_start")

    @app.get("/")
    async def address(request):
        return response.text(request.remote_addr or request.ip)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = await start_sanic(app, listener, serving=True)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
            async with http.get(url, headers={"X-Forwarded-For": forwarded}) as reply:
                return await reply.text()
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


async def test_without_trusted_proxies_a_forwarded_header_is_ignored():
    assert await seen_address(0, "203.0.113.7") == "127.0.0.1"


async def test_behind_one_proxy_the_address_it_forwarded_is_the_clients():
    # haproxy replaces the header (set-header), so the last entry is the address it saw.
    assert await seen_address(1, "203.0.113.7") == "203.0.113.7"
    assert await seen_address(1, "198.51.100.1, 203.0.113.7") == "203.0.113.7"


def redis_nobody_answers() -> EndpointConfig:
    return EndpointConfig(url="127.0.0.1", type="redis", port=free_port(), db=1, key_prefix="test")


async def test_with_redis_down_a_turn_still_takes_a_lock_in_this_process():
    store = fail_open(redis_nobody_answers())
    assert isinstance(store, FailOpenRedisLockStore)
    order: list[str] = []

    async def turn(name: str, hold: float) -> None:
        async with store.lock("conversation", wait_time_in_seconds=0.05) as lock:
            assert isinstance(lock, TicketLock)
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    # Two turns of one conversation in this process still go one after the other.
    await asyncio.gather(turn("first", 0.2), turn("second", 0))
    assert order == ["first in", "first out", "second in", "second out"]


def test_other_lock_stores_are_left_as_configured():
    in_memory = EndpointConfig(type="in_memory")
    assert fail_open(in_memory) is in_memory
    assert fail_open(None) is None


async def test_an_error_that_is_not_redis_failing_is_not_swallowed(monkeypatch):
    store = FailOpenRedisLockStore(redis_nobody_answers())
    monkeypatch.setattr(store, "_mutex", lambda _id: contextlib.nullcontext())
    monkeypatch.setattr(store, "get_or_create_lock", lambda _id: (_ for _ in ()).throw(ValueError("bad lock")))
    with pytest.raises(Exception, match="bad lock"):
        async with store.lock("conversation"):
            pass


def replica_stores(server, count: int) -> list[FailOpenRedisLockStore]:
    """``count`` lock stores on one Redis, as ``count`` replicas have."""
    return [FailOpenRedisLockStore(EndpointConfig(url="127.0.0.1", type="redis", port=server.port, db=1))
            for _ in range(count)]


def test_tickets_issued_at_once_on_several_replicas_are_all_different(redis_server):
    redis_server.flush()
    stores = replica_stores(redis_server, 4)
    issued: list[int] = []
    start = threading.Barrier(len(stores))

    def take(store: FailOpenRedisLockStore) -> None:
        start.wait()
        for _ in range(10):
            issued.append(store.issue_ticket("conversation", 60))

    threads = [threading.Thread(target=take, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Rasa's own RedisLockStore reads and writes the lock in separate calls: tickets got lost or repeated.
    assert sorted(issued) == list(range(40))
    assert len(stores[0].get_lock("conversation").tickets) == 40


def test_a_ticket_taken_while_another_is_released_is_kept(redis_server):
    redis_server.flush()
    first, second = replica_stores(redis_server, 2)
    for _ in range(50):
        mine = first.issue_ticket("conversation", 60)
        taken: list[int] = []
        released = threading.Thread(target=first.cleanup, args=("conversation", mine))
        taking = threading.Thread(target=lambda: taken.append(second.issue_ticket("conversation", 60)))
        released.start()
        taking.start()
        released.join(10)
        taking.join(10)
        lock = second.get_lock("conversation")
        assert lock is not None and [ticket.number for ticket in lock.tickets] == taken
        second.cleanup("conversation", taken[0])
        assert second.get_lock("conversation") is None
