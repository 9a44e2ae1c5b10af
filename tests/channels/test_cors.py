"""The CORS policy both channels share, and what a browser sees from each channel.

Rasa runs with ``cors=None``, so each answer must carry the grant exactly once, and
only for an allowed origin: a duplicated header makes browsers refuse the answer, a
grant for a foreign origin lets any site talk to the assistant.
"""

from __future__ import annotations

import aiohttp
import pytest

from bot.assistant.channels.cors import CorsPolicy
from tests.channels.conftest import CLINIC_ORIGIN, FOREIGN_ORIGIN
from tests.support.sanic_server import start_sanic, stop_sanic

POLICY = CorsPolicy.of(["https://www.example-clinic.org", "http://127.0.0.1:8000/"])
POLLING = "/socket.io/?EIO=4&transport=polling"


def test_allowed_origin_is_granted_itself_never_a_wildcard_or_credentials():
    headers = POLICY.grant("https://www.example-clinic.org")
    assert headers["Access-Control-Allow-Origin"] == "https://www.example-clinic.org"
    assert "Access-Control-Allow-Credentials" not in headers
    assert headers["Vary"] == "Origin"


def test_origins_compare_case_insensitively_and_without_a_trailing_slash():
    assert POLICY.allows("HTTPS://WWW.Example-Clinic.org")
    assert POLICY.allows("http://127.0.0.1:8000")


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "https://www.example-clinic.org.evil.example", "http://127.0.0.1:8001"]
)
def test_foreign_origin_gets_no_grant(origin):
    assert not POLICY.allows(origin)
    assert "Access-Control-Allow-Origin" not in POLICY.grant(origin)
    assert "Access-Control-Allow-Origin" not in POLICY.preflight(origin, "POST, OPTIONS")
    assert not POLICY.socketio_options()["cors_allowed_origins"](origin, {})


def test_request_without_an_origin_is_not_a_browser_call_and_is_allowed_without_a_grant():
    assert POLICY.allows(None)
    assert "Access-Control-Allow-Origin" not in POLICY.grant(None)


def test_preflight_names_the_method_and_header_the_webhook_needs():
    headers = POLICY.preflight("https://www.example-clinic.org", "POST, OPTIONS")
    assert headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert int(headers["Access-Control-Max-Age"]) > 0


def test_a_wildcard_is_refused():
    with pytest.raises(ValueError):
        CorsPolicy.of(["*"])


def test_socketio_gets_the_same_list_without_credentials():
    options = POLICY.socketio_options()
    assert options["cors_credentials"] is False
    assert options["cors_allowed_origins"]("https://www.example-clinic.org", {})


async def test_polling_answer_carries_the_grant_exactly_once_for_an_allowed_origin(channel_server):
    async with aiohttp.ClientSession() as http:
        async with http.get(channel_server.url + POLLING, headers={"Origin": CLINIC_ORIGIN}) as reply:
            assert reply.status == 200
            assert reply.headers.getall("Access-Control-Allow-Origin") == [CLINIC_ORIGIN]
            assert "Access-Control-Allow-Credentials" not in reply.headers


async def test_polling_connect_from_a_foreign_origin_is_refused_without_a_grant(channel_server):
    async with aiohttp.ClientSession() as http:
        async with http.get(channel_server.url + POLLING, headers={"Origin": FOREIGN_ORIGIN}) as reply:
            assert reply.status == 400
            assert "Access-Control-Allow-Origin" not in reply.headers


async def test_websocket_connect_from_a_foreign_origin_is_refused(channel_server):
    url = channel_server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(url, headers={"Origin": FOREIGN_ORIGIN})
        async with http.ws_connect(url, headers={"Origin": CLINIC_ORIGIN}) as ws:
            opening = await ws.receive_str()
            assert opening.startswith("0{")


async def test_rest_answer_carries_the_grant_exactly_once_for_an_allowed_origin(channel_server):
    async with aiohttp.ClientSession() as http:
        body = {"sender": "cors-1", "message": "hello"}
        async with http.post(channel_server.webhook, json=body, headers={"Origin": CLINIC_ORIGIN}) as reply:
            assert reply.status == 200
            assert reply.headers.getall("Access-Control-Allow-Origin") == [CLINIC_ORIGIN]
            assert "Access-Control-Allow-Credentials" not in reply.headers


async def test_rest_preflight_grants_an_allowed_origin_once(channel_server):
    headers = {
        "Origin": CLINIC_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with aiohttp.ClientSession() as http:
        async with http.options(channel_server.webhook, headers=headers) as reply:
            assert reply.status == 204
            assert reply.headers.getall("Access-Control-Allow-Origin") == [CLINIC_ORIGIN]
            assert "POST" in reply.headers["Access-Control-Allow-Methods"]
            assert "Access-Control-Allow-Credentials" not in reply.headers


async def test_rest_from_a_foreign_origin_gets_no_grant_and_is_not_processed(channel_server):
    async with aiohttp.ClientSession() as http:
        preflight = {"Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "POST"}
        async with http.options(channel_server.webhook, headers=preflight) as reply:
            assert "Access-Control-Allow-Origin" not in reply.headers
        body = {"sender": "cors-2", "message": "hello"}
        async with http.post(channel_server.webhook, json=body, headers={"Origin": FOREIGN_ORIGIN}) as reply:
            assert reply.status == 403
            assert "Access-Control-Allow-Origin" not in reply.headers
    assert channel_server.agent.received == []


async def test_rest_without_an_origin_works_as_before(channel_server):
    async with aiohttp.ClientSession() as http:
        async with http.post(channel_server.webhook, json={"sender": "cors-3", "message": "hello"}) as reply:
            assert reply.status == 200
            assert await reply.json() == [{"recipient_id": "cors-3", "text": "echo: hello"}]


# Started the way Rasa starts its server: every before/after-start listener runs, so the
# Sanic-Cors that Rasa's configure_cors installs is live (the plain fixture never starts it).


@pytest.fixture
async def rasa_like_server():
    import socket

    from tests.channels.conftest import EchoAgent, build_app, channel_settings

    app, _, socketio = build_app(channel_settings(), EchoAgent(), {"user_message_evt": "user_uttered",
                                                                   "bot_message_evt": "bot_uttered"})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = await start_sanic(app, listener)
    yield f"http://127.0.0.1:{port}/webhooks/rest/webhook"
    await stop_sanic(server, socketio.sio)


async def test_with_rasas_leftover_cors_live_the_preflight_is_the_channels_own(rasa_like_server):
    headers = {"Origin": CLINIC_ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    async with aiohttp.ClientSession() as http:
        async with http.options(rasa_like_server, headers=headers) as reply:
            assert reply.status == 204
            assert reply.headers.getall("Access-Control-Allow-Origin") == [CLINIC_ORIGIN]
            assert "content-type" in reply.headers["Access-Control-Allow-Headers"].lower()
            assert "Access-Control-Allow-Credentials" not in reply.headers
        async with http.options(rasa_like_server, headers={**headers, "Origin": FOREIGN_ORIGIN}) as reply:
            assert "Access-Control-Allow-Origin" not in reply.headers
            assert "Access-Control-Allow-Credentials" not in reply.headers
        async with http.post(rasa_like_server, json={"sender": "cors-9", "message": "hi"},
                             headers={"Origin": CLINIC_ORIGIN}) as reply:
            assert reply.status == 200
            assert reply.headers.getall("Access-Control-Allow-Origin") == [CLINIC_ORIGIN]
            assert "Access-Control-Allow-Credentials" not in reply.headers


def test_retiring_rasas_cors_leaves_it_nothing_to_match():
    from types import SimpleNamespace

    from bot.assistant.channels.cors import retire_rasa_cors

    context = SimpleNamespace(resources=[("/*", {})], options={"automatic_options": True})
    app = SimpleNamespace(ctx=SimpleNamespace(sanic_cors=context))

    assert retire_rasa_cors(app) and context.resources == [] and context.options["automatic_options"] is False
    assert not retire_rasa_cors(SimpleNamespace(ctx=SimpleNamespace()))
