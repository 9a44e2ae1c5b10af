"""Several Rasa replicas sharing one Redis: rate limits, presence, and socket.io events across replicas.

Everything runs against a real ``redis-server`` on loopback (:mod:`tests.support.redis_server`);
"two replicas" are two channel servers in this process that share nothing but that Redis
(and, for the staff bridge, the store and the tracker store, as replicas do).
"""

from __future__ import annotations

import asyncio
import socket
import uuid

import aiohttp
import pytest
from rasa.core.channels.channel import register
from rasa.server import configure_cors
from redis import asyncio as aioredis
from sanic import Sanic

from bot.assistant.channels.limits import MessageLimits, RateLimiter, message_limits
from bot.assistant.channels.shared_state import (
    SOCKETIO_CHANNEL,
    RedisHealth,
    RedisMessageLimits,
    RedisPresence,
    ReplicaRedisManager,
    SharedRedis,
)
from bot.assistant.channels.socketio import PatientSocketIOInput
from bot.assistant.channels.staff_bridge import StaffBridgeInput
from bot.assistant.servers.staff_port import StaffListener
from bot.core.store.models import ChatLineKind
from bot.launch import free_port
from tests.channels.conftest import CLINIC_ORIGIN, SOCKETIO_CREDENTIALS, channel_settings
from tests.channels.test_staff_bridge import SECRET, BridgeServer, TrackerAgent
from tests.support.redis_server import RedisServer, redis_server, redis_url  # noqa: F401 - pytest fixtures
from tests.support.sanic_server import start_sanic, stop_sanic
from tests.support.socketio_client import Patient


@pytest.fixture
async def shared_clients():
    """SharedRedis clients made by a test (each with its own health record), closed afterwards."""
    made: list[SharedRedis] = []

    def make(url: str, **options) -> SharedRedis:
        client = SharedRedis(url, health=RedisHealth(), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


# ---- rate limits ------------------------------------------------------------------------------


async def test_a_burst_up_to_the_limit_then_refused(redis_url, shared_clients):
    limits = RedisMessageLimits(shared_clients(redis_url), sender_per_minute=3, address_per_minute=100)
    assert [await limits.admit("s", "10.0.0.1") for _ in range(4)] == [True, True, True, False]


async def test_two_replicas_count_against_one_limit(redis_url, shared_clients):
    a = RedisMessageLimits(shared_clients(redis_url), sender_per_minute=4, address_per_minute=100)
    b = RedisMessageLimits(shared_clients(redis_url), sender_per_minute=4, address_per_minute=100)
    answers = [await (a if i % 2 else b).admit("s", "10.0.0.1") for i in range(5)]
    assert answers == [True, True, True, True, False]
    assert not await a.admit("s", "10.0.0.2") and not await b.admit("s", "10.0.0.3")
    assert await a.admit("other", "10.0.0.1")  # another sender has its own bucket


async def test_either_limit_refuses_and_a_refused_message_costs_nothing(redis_url, shared_clients):
    limits = RedisMessageLimits(shared_clients(redis_url), sender_per_minute=2, address_per_minute=3)
    assert await limits.admit("a", "10.0.0.1") and await limits.admit("a", "10.0.0.1")
    assert not await limits.admit("a", "10.0.0.1")  # sender limit
    assert await limits.admit("b", "10.0.0.1")
    assert not await limits.admit("c", "10.0.0.1")  # address limit
    assert await limits.admit("c", "10.0.0.2")  # 'c' was not charged when refused


async def test_a_token_comes_back_after_its_share_of_the_minute(redis_url, shared_clients):
    limits = RedisMessageLimits(shared_clients(redis_url), sender_per_minute=60, address_per_minute=600)
    while await limits.admit("s", "10.0.0.1"):
        pass
    assert not await limits.admit("s", "10.0.0.1")
    await asyncio.sleep(1.1)  # 60 a minute: one a second
    assert await limits.admit("s", "10.0.0.1")
    assert not await limits.admit("s", "10.0.0.1")


async def test_buckets_expire_and_hold_no_message_text(redis_url, shared_clients):
    shared = shared_clients(redis_url)
    limits = RedisMessageLimits(shared, sender_per_minute=5, address_per_minute=5)
    await limits.admit("sender-1", "10.0.0.1")
    keys = sorted(await shared.client.keys("*"))
    assert keys == ["dry_needling:chat:rate:address:10.0.0.1", "dry_needling:chat:rate:sender:sender-1"]
    for key in keys:
        assert 0 < await shared.client.pttl(key) <= 60_000


async def test_the_settings_pick_memory_without_redis_and_redis_with_it(redis_url):
    memory = message_limits(channel_settings(sender_messages_per_minute=2))
    assert isinstance(memory, MessageLimits)
    assert [await memory.admit("s", None) for _ in range(3)] == [True, True, False]
    shared = message_limits(channel_settings(redis_url=redis_url, sender_messages_per_minute=2))
    assert isinstance(shared, RedisMessageLimits)
    try:
        assert [await shared.admit("s", None) for _ in range(3)] == [True, True, False]
    finally:
        await shared.shared.close()


async def test_the_memory_limits_admit_as_they_allow():
    limits = MessageLimits(per_sender=RateLimiter(1), per_address=RateLimiter(5))
    assert await limits.admit("a", "10.0.0.1") and not await limits.admit("a", "10.0.0.1")


async def test_redis_down_lets_messages_through_and_marks_the_health(shared_clients, caplog):
    server = RedisServer().start()
    try:
        shared = shared_clients(server.url, timeout=0.5)
        limits = RedisMessageLimits(shared, sender_per_minute=1, address_per_minute=1)
        assert await limits.admit("s", "10.0.0.1") and not await limits.admit("s", "10.0.0.1")
        assert shared.health.ok
        server.stop()
        assert [await limits.admit("s", "10.0.0.1") for _ in range(3)] == [True, True, True]  # fail open
        assert not shared.health.ok and shared.health.report() == "failing"
        assert not await shared.check()
        assert any("Redis failed" in record.getMessage() for record in caplog.records)
    finally:
        server.close()


async def test_a_hung_redis_is_given_up_on_within_the_timeout(shared_clients):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts, never answers
    try:
        shared = shared_clients(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout=0.3)
        limits = RedisMessageLimits(shared, sender_per_minute=1, address_per_minute=1)
        started = asyncio.get_running_loop().time()
        assert await limits.admit("s", None)
        assert asyncio.get_running_loop().time() - started < 2
        assert not shared.health.ok
    finally:
        silent.close()


async def test_the_health_record_clears_when_redis_answers_again(redis_url, shared_clients):
    shared = shared_clients(redis_url)
    shared.health.failed("test", ConnectionError())
    assert not shared.health.ok
    assert await shared.check()
    assert shared.health.ok


# ---- presence ---------------------------------------------------------------------------------


class NoSockets:
    """A socket.io server as presence sees it, with no socket of its own in any room."""

    class manager:  # noqa: N801 - stands in for ``sio.manager``
        @staticmethod
        def get_participants(namespace, room):
            raise KeyError(room)


async def test_a_socket_on_one_replica_is_seen_from_another(redis_url, shared_clients):
    a = RedisPresence(shared_clients(redis_url), NoSockets(), "/")
    b = RedisPresence(shared_clients(redis_url), NoSockets(), "/")
    assert not await b.connected("session-1")
    await a.join("session-1", "sid-1")
    assert await b.connected("session-1") and not await b.connected("session-2")
    await a.join("session-1", "sid-2")
    await a.leave("session-1", "sid-1")
    assert await b.connected("session-1")
    await a.leave("session-1", "sid-2")
    assert not await b.connected("session-1")


async def test_sockets_of_a_replica_that_stopped_refreshing_expire(redis_url, shared_clients):
    a = RedisPresence(shared_clients(redis_url), NoSockets(), "/", ttl=1.0, refresh_every=0.3)
    b = RedisPresence(shared_clients(redis_url), NoSockets(), "/", ttl=1.0)
    await a.join("kept", "sid-1")
    await a.start()
    await asyncio.sleep(1.5)  # past the first expiry: the refresh kept it
    assert await b.connected("kept")
    a._refresher.cancel()  # the replica dies: no more refreshes, no goodbye
    await asyncio.sleep(1.2)
    assert not await b.connected("kept")


async def test_a_stopping_replica_withdraws_its_sockets(redis_url, shared_clients):
    a = RedisPresence(shared_clients(redis_url), NoSockets(), "/")
    b = RedisPresence(shared_clients(redis_url), NoSockets(), "/")
    await a.start()
    await a.join("s1", "sid-1")
    await a.join("s2", "sid-2")
    await a.stop()
    assert not await b.connected("s1") and not await b.connected("s2")


async def test_presence_with_redis_down_says_not_connected_and_marks_the_health(shared_clients):
    server = RedisServer().start()
    try:
        shared = shared_clients(server.url, timeout=0.5)
        presence = RedisPresence(shared, NoSockets(), "/")
        await presence.join("s1", "sid-1")
        server.stop()
        assert not await presence.connected("s1")  # a staff line then waits for the patient's return
        assert not shared.health.ok
    finally:
        server.close()


# ---- two socket.io servers, one Redis ----------------------------------------------------------


async def wait_for_subscribers(url: str, count: int) -> None:
    """Until ``count`` replicas' socket.io managers listen on the shared channel (each starts at its first socket)."""
    client = aioredis.Redis.from_url(url)
    try:
        for _ in range(100):
            subscribed = dict(await client.pubsub_numsub(SOCKETIO_CHANNEL))
            if subscribed.get(SOCKETIO_CHANNEL.encode(), 0) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the socket.io managers did not subscribe")
    finally:
        await client.close()


@pytest.fixture
async def patients():
    made: list[Patient] = []

    async def connect(url: str) -> Patient:
        patient = Patient(timeout=20)  # the first message of a process is slow on a loaded machine
        made.append(patient)
        return await patient.connect(url, CLINIC_ORIGIN)

    yield connect
    for patient in made:
        await patient.leave()


async def test_without_redis_the_server_keeps_its_own_manager_and_health(serve):
    server = await serve()
    assert not isinstance(server.socketio.sio.manager, ReplicaRedisManager)
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/webhooks/socketio/") as reply:
            assert await reply.json() == {"status": "ok"}


async def test_an_emit_on_one_replica_reaches_a_socket_on_the_other(serve, patients, redis_url):
    a = await serve(redis_url=redis_url)
    b = await serve(redis_url=redis_url)
    assert isinstance(a.socketio.sio.manager, ReplicaRedisManager)
    patient = await patients(b.url)
    session_id = await patient.start()
    await wait_for_subscribers(redis_url, 1)
    assert await a.socketio.live.connected(session_id)  # A has no socket of its own: Redis says B has
    await a.socketio.sio.emit("bot_uttered", {"text": "from replica A"}, room=session_id, namespace="/")
    assert await patient.next("bot_uttered") == {"text": "from replica A"}
    # The patient's own conversation on B is answered once (handled on B, ignored by its own subscription).
    await patient.say("hello", session_id)
    assert await patient.next("bot_uttered") == {"text": "echo: hello"}
    assert await patient.quiet(0.5)
    assert [m.text for m in b.agent.received] == ["hello"] and a.agent.received == []
    await patient.leave()
    for _ in range(50):
        if not await a.socketio.live.connected(session_id):
            break
        await asyncio.sleep(0.1)
    assert not await a.socketio.live.connected(session_id)


async def test_the_rate_limit_is_shared_by_the_replicas(serve, patients, redis_url):
    a = await serve(redis_url=redis_url, sender_messages_per_minute=2)
    b = await serve(redis_url=redis_url, sender_messages_per_minute=2)
    on_b = await patients(b.url)
    session_id = await on_b.start()
    await on_b.say("one", session_id)
    assert (await on_b.next("bot_uttered"))["text"] == "echo: one"
    await on_b.leave()
    on_a = await patients(a.url)  # the load balancer moved the patient (B went away, say)
    assert await on_a.start(session_id) == session_id
    await on_a.say("two", session_id)
    assert (await on_a.next("bot_uttered"))["text"] == "echo: two"
    await on_a.say("three", session_id)
    refused = (await on_a.next("bot_uttered"))["text"]
    assert refused.startswith("You're sending messages faster than I can answer")
    assert [m.text for m in a.agent.received] == ["two"]


async def test_redis_down_the_chat_still_answers_and_the_health_says_so(serve, patients):
    server = RedisServer().start()
    try:
        replica = await serve(redis_url=server.url, sender_messages_per_minute=1)
        replica.socketio.shared.health = RedisHealth()  # this test's own record
        replica.socketio.sio.manager.health = replica.socketio.shared.health
        async with aiohttp.ClientSession() as http:
            async with http.get(replica.url + "/webhooks/socketio/") as reply:
                assert await reply.json() == {"status": "ok", "redis": "ok"}
            server.stop()
            patient = await patients(replica.url)
            session_id = await patient.start()
            for text in ("one", "two", "three"):  # over the limit of 1: the limit fails open
                await patient.say(text, session_id)
                assert await patient.next("bot_uttered") == {"text": f"echo: {text}"}
            async with http.get(replica.url + "/webhooks/socketio/") as reply:
                assert reply.status == 200
                assert await reply.json() == {"status": "degraded", "redis": "failing"}
    finally:
        server.close()


# ---- the staff bridge across replicas -----------------------------------------------------------


@pytest.fixture
async def two_bridges(db_url, sessions, redis_url):
    """Two replicas, each with the web chat and the staff bridge, sharing the store, the tracker store and Redis."""
    agent = TrackerAgent()  # one tracker store for both, as the SQL tracker store is for replicas
    started: list[tuple[object, PatientSocketIOInput, BridgeServer]] = []
    for _ in range(2):
        settings = channel_settings(database_url=db_url, staff_bridge_secret=SECRET, redis_url=redis_url)
        app = Sanic(f"replica_{uuid.uuid4().hex}", configure_logging=False)
        configure_cors(app, None)
        channel = PatientSocketIOInput.from_settings(settings, SOCKETIO_CREDENTIALS)
        register([channel, StaffBridgeInput(SECRET)], app, "/webhooks/")
        app.ctx.agent = agent
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        staff = StaffListener(free_port())
        staff.install(app)
        server = await start_sanic(app, listener, serving=True)
        replica = BridgeServer(
            url=f"http://127.0.0.1:{listener.getsockname()[1]}", staff_url=f"http://127.0.0.1:{staff.port}",
            agent=agent, sessions=sessions, sio=channel.sio, staff=staff,
        )
        started.append((server, channel, replica))
    yield [replica for _, _, replica in started]
    for server, channel, _ in started:
        await stop_sanic(server, channel.sio)
        if channel.chat_lines._sessions is not None:
            await channel.chat_lines._sessions.kw["bind"].dispose()
        await channel.shared.close()
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


async def test_a_staff_line_sent_to_one_replica_reaches_the_patient_on_the_other(two_bridges, patients, redis_url):
    a, b = two_bridges
    patient = await patients(b.url)
    session_id = await patient.start()
    await patient.say("hello", session_id)
    assert await patient.next("bot_uttered") == {"text": "echo: hello"}
    await wait_for_subscribers(redis_url, 1)

    status, presence = await a.call("presence", {"sender_id": session_id})
    assert status == 200 and presence == {"known": True, "paused": False, "connected": True}

    joined = await a.line(session_id, ChatLineKind.joined, "Jane Doe from Example Physio has joined the chat.")
    status, answer = await a.call("takeover", {"sender_id": session_id, "line_id": joined})
    assert status == 200 and answer == {"paused": True, "delivered": True, "connected": True}
    shown = await patient.next("bot_uttered")
    assert shown["text"] == "Jane Doe from Example Physio has joined the chat."
    assert shown["metadata"]["staff"]["event"] == "joined"

    message = await a.line(session_id, ChatLineKind.message, "Hello, I'm reading your messages.")
    status, answer = await a.call("message", {"sender_id": session_id, "line_id": message})
    assert status == 200 and answer["delivered"] is True
    assert (await patient.next("bot_uttered"))["text"] == "Hello, I'm reading your messages."
    assert (await a.stored(message)).delivered_at is not None

    # Staff hold the chat on every replica: the patient's next message on B gets no automated reply.
    await patient.say("thanks", session_id)
    assert await patient.quiet(0.5)


async def test_a_staff_line_waits_when_redis_cannot_carry_it(two_bridges, patients, redis_url, redis_server):
    a, b = two_bridges
    patient = await patients(b.url)
    session_id = await patient.start()
    await patient.say("hello", session_id)
    assert await patient.next("bot_uttered") == {"text": "echo: hello"}
    await wait_for_subscribers(redis_url, 1)
    redis_server.stop()
    try:
        joined = await a.line(session_id, ChatLineKind.joined, "Jane Doe from Example Physio has joined the chat.")
        status, answer = await a.call("takeover", {"sender_id": session_id, "line_id": joined})
        # A cannot tell that B holds the chat: the line is kept for the patient's return, not lost.
        assert status == 200 and answer["delivered"] is False
        assert (await a.stored(joined)).delivered_at is None
    finally:
        # The module's server is needed by later tests: start a fresh one on the same port.
        redis_server.process = None
        redis_server.start()
