"""The hardened REST webhook: reserved sender ids, size caps and rate limits, each with a clear answer."""

from __future__ import annotations

import json

import aiohttp

from bot.assistant.channels.caps import MAX_METADATA_BYTES, MAX_REQUEST_BYTES, MAX_SENDER_CHARS
from bot.assistant.channels.sessions import SessionTokens
from bot.core.escalation.flood import METADATA_KEY, client_key
from tests.channels.conftest import channel_settings


async def post(server, body, headers: dict | None = None) -> tuple[int, object, dict]:
    async with aiohttp.ClientSession() as http:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
        async with http.post(server.webhook, data=data, headers=headers) as reply:
            return reply.status, await reply.json(), dict(reply.headers)


async def test_a_sender_id_of_the_web_chat_form_is_refused_with_a_clear_400(channel_server):
    session_id = SessionTokens(channel_settings().session_secret).issue()
    status, body, _ = await post(channel_server, {"sender": session_id, "message": "yes"})
    assert status == 400
    assert "reserved for web chat sessions" in body["reason"]
    assert channel_server.agent.received == []


async def test_a_too_long_sender_id_is_refused(channel_server):
    status, body, _ = await post(channel_server, {"sender": "s" * (MAX_SENDER_CHARS + 1), "message": "hi"})
    assert status == 400
    assert str(MAX_SENDER_CHARS) in body["reason"]


async def test_an_oversized_body_is_refused_without_processing(channel_server):
    status, body, _ = await post(channel_server, {"sender": "big", "message": "x" * MAX_REQUEST_BYTES})
    assert status == 400
    assert "larger than" in body["reason"]
    assert channel_server.agent.received == []


async def test_oversized_metadata_is_refused(channel_server):
    metadata = {"blob": "x" * MAX_METADATA_BYTES}
    status, body, _ = await post(channel_server, {"sender": "meta", "message": "hi", "metadata": metadata})
    assert status == 400
    assert "metadata" in body["reason"]


async def test_small_metadata_reaches_rasa(channel_server):
    status, _, _ = await post(channel_server, {"sender": "meta2", "message": "hi", "metadata": {"lang": "en"}})
    assert status == 200
    assert channel_server.agent.received[0].metadata["lang"] == "en"


async def test_the_channel_sets_the_client_key_and_a_client_cannot_choose_it(channel_server):
    forged = {METADATA_KEY: client_key("198.51.100.1", "test-session-secret")}
    status, _, _ = await post(channel_server, {"sender": "meta3", "message": "hi", "metadata": forged})
    assert status == 200
    assert channel_server.agent.received[0].metadata == {METADATA_KEY: client_key("127.0.0.1", "test-session-secret")}


async def test_a_sender_over_its_rate_limit_gets_a_polite_429_with_the_phone_number(serve):
    server = await serve(sender_messages_per_minute=2)
    for _ in range(2):
        status, _, _ = await post(server, {"sender": "fast", "message": "hello"})
        assert status == 200
    status, body, headers = await post(server, {"sender": "fast", "message": "hello"})
    assert status == 429
    assert headers["Retry-After"] == "60"
    assert body[0]["recipient_id"] == "fast"
    assert "wait a minute" in body[0]["text"]
    clinic = server.rest.clinic
    assert clinic.phone in body[0]["text"] and clinic.emergency_number in body[0]["text"]
    assert len(server.agent.received) == 2
    status, _, _ = await post(server, {"sender": "someone-else", "message": "hello"})
    assert status == 200


async def test_an_address_over_its_rate_limit_is_slowed_whatever_sender_ids_it_invents(serve):
    server = await serve(address_messages_per_minute=3)
    statuses = [(await post(server, {"sender": f"new-{i}", "message": "hi"}))[0] for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


async def test_a_forwarded_for_header_sanic_was_not_told_to_trust_does_not_escape_the_address_limit(serve):
    server = await serve(address_messages_per_minute=2)
    statuses = [
        (await post(server, {"sender": f"spoof-{i}", "message": "hi"}, headers={"X-Forwarded-For": f"10.0.0.{i}"}))[0]
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
