"""Fuzz every route the Rasa process serves with malformed and random bodies: no answer is ever >= 500.

One Sanic app holds every channel of ``credentials.yml`` (REST, socket.io, the staff
bridge, the Twilio SMS channel configured against the fake Twilio API) and is started
the way Rasa starts its server: Rasa's ``configure_cors``, every start listener, and
the staff bridges on their own loopback port (:mod:`bot.assistant.servers.staff_port`). The model
is a scripted agent. The app runs in a thread with its own event loop; requests go out
raw (:mod:`tests.support.malformed`). Twilio requests are signed whenever their body
is a form, so fuzzed texts get past the signature check into the channel; staff-bridge
calls carry the secret, or none.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.core.channels.channel import register
from rasa.server import configure_cors
from sanic import Sanic

from bot.assistant.channels.rest import PatientRestInput
from bot.assistant.channels.socketio import PatientSocketIOInput
from bot.assistant.channels.staff_bridge import SECRET_HEADER, StaffBridgeInput
from bot.assistant.channels.twilio_sms import ClinicSmsInput
from bot.assistant.servers.staff_port import StaffListener
from bot.launch import free_port
from tests.channels.conftest import CLINIC_ORIGIN, FOREIGN_ORIGIN, SOCKETIO_CREDENTIALS
from tests.support.malformed import MALFORMED, Tally, bodies, send
from tests.support.sanic_server import start_sanic, stop_sanic
from tests.support.sms_channel import BRIDGE_SECRET, ScriptedAgent, sms_settings

TALLY = Tally()
PATIENT_ROUTES = [
    ("POST", "/webhooks/rest/webhook"), ("OPTIONS", "/webhooks/rest/webhook"), ("GET", "/webhooks/rest/"),
    ("POST", "/socket.io/?EIO=4&transport=polling"), ("POST", "/socket.io/?EIO=4&transport=polling&sid=bogus"),
    ("GET", "/socket.io/?EIO=4&transport=polling"), ("POST", "/webhooks/twilio/webhook"),
    ("POST", "/webhooks/twilio/status"), ("GET", "/webhooks/twilio/"), ("GET", "/"), ("POST", "/"),
    ("POST", "/webhooks/staff_bridge/takeover"),  # not here: 404
]
STAFF_ROUTES = [("POST", f"/webhooks/{bridge}/{operation}") for bridge in ("staff_bridge", "twilio/staff")
                for operation in ("takeover", "message", "handback", "presence")] + [("POST", "/webhooks/rest/webhook")]
ORIGINS = [{}, {"Origin": CLINIC_ORIGIN}, {"Origin": FOREIGN_ORIGIN}]


@dataclass
class Served:
    port: int
    staff_port: int
    webhook_url: str


def _twilio_signature(url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Twilio's signature over the URL and the form's parameters, when the body is a readable form."""
    from tests.support.fake_twilio import sign

    if not headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}
    return {"X-Twilio-Signature": sign(url, params)}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    from bot.core.store.migrate import upgrade
    from tests.support.fake_twilio import FakeTwilio

    folder = tmp_path_factory.mktemp("rasa-fuzz")
    db_url = f"sqlite:///{folder / 'store.db'}"
    upgrade(db_url)
    fake = FakeTwilio().start()
    port, staff_port = free_port(), free_port()
    channel_settings = sms_settings(db_url, port, fake, cors_origins=(CLINIC_ORIGIN,), session_secret="fuzz",
                                    sender_messages_per_minute=100000, address_messages_per_minute=100000,
                                    sms_messages_per_minute=100000)
    app = Sanic(f"fuzz_{uuid.uuid4().hex}", configure_logging=False)
    configure_cors(app, None)
    sms = ClinicSmsInput.from_settings(channel_settings)
    socketio = PatientSocketIOInput.from_settings(channel_settings, SOCKETIO_CREDENTIALS)
    register([PatientRestInput.from_settings(channel_settings), socketio, StaffBridgeInput(BRIDGE_SECRET), sms],
             app, "/webhooks/")
    app.ctx.agent = ScriptedAgent()
    StaffListener(staff_port).install(app)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start():
        listener = socket.socket()
        listener.bind(("127.0.0.1", port))
        server = await start_sanic(app, listener)
        await sms.start()
        return server

    async def stop(server):
        await sms.stop()
        await stop_sanic(server, socketio.sio)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    try:
        yield Served(port, staff_port, channel_settings.twilio_webhook_url)
    finally:
        asyncio.run_coroutine_threadsafe(stop(server), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        fake.stop()
        print("\n" + TALLY.summary("Rasa routes fuzz"))


def _request(served: Served, staff: bool, method: str, path: str, extra: dict[str, str],
             headers: dict[str, str], body: bytes) -> int:
    port = served.staff_port if staff else served.port
    if path.startswith("/webhooks/twilio/") and not staff:
        extra = {**extra, **_twilio_signature(f"http://127.0.0.1:{served.port}{path}", headers, body)}
    status, _, text = send("127.0.0.1", port, method, path, {**headers, **extra}, body)
    TALLY.record(status, f"{'staff' if staff else 'patient'} {method} {path} {extra} {headers}")
    assert b"Traceback" not in text
    return status


def test_every_malformed_body_on_every_route_is_answered_below_500(served):
    answered: dict[str, set[int]] = {}
    for method, path in PATIENT_ROUTES:
        for origin in ORIGINS if path.startswith("/webhooks/rest/") else ORIGINS[:1]:
            for what, headers, body in MALFORMED:
                status = _request(served, False, method, path, origin, headers, body)
                answered.setdefault(f"{method} {path} {what}", set()).add(status)
    for method, path in STAFF_ROUTES:
        for secret in ({SECRET_HEADER: BRIDGE_SECRET}, {}):
            for what, headers, body in MALFORMED:
                _request(served, True, method, path, secret, headers, body)

    assert not TALLY.server_errors, sorted({error.split(" {")[0] for error in TALLY.server_errors})
    assert answered["POST /webhooks/rest/webhook invalid JSON"] == {400, 403}  # 403: the foreign origin
    assert answered["POST /webhooks/rest/webhook JSON nested too deep"] <= {400, 403}


@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_bodies_on_random_routes_are_answered_below_500(served, data):
    staff = data.draw(st.booleans(), label="staff port")
    method, path = data.draw(st.sampled_from(STAFF_ROUTES if staff else PATIENT_ROUTES), label="route")
    extra = data.draw(st.sampled_from([{SECRET_HEADER: BRIDGE_SECRET}, {}] if staff else ORIGINS), label="caller")
    headers, body = data.draw(bodies(), label="body")

    status = _request(served, staff, method, path, extra, headers, body)

    assert status < 500, (staff, method, path, extra, headers, body[:200])
