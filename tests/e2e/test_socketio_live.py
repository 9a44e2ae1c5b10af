"""End-to-end: python-socketio's standard client on the long-polling transport against the real Rasa server.

The Rasa server runs as ``make run`` starts it, with no app-wide CORS, so these check
what a standard web chat meets in production: one CORS grant for the clinic's page,
none for another site, a conversation through Rasa's socket.io events, and sessions
that belong to the socket they were issued to.
"""

from __future__ import annotations

import re
import uuid

import aiohttp
import pytest
import requests

from tests.support.socketio_client import Patient

pytestmark = pytest.mark.e2e

FOREIGN_ORIGIN = "http://evil.example"
POLLING = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture
async def patients(live_stack):
    """Clients connected to the live Rasa server from the web app's origin."""
    made: list[Patient] = []

    async def connect(origin: str = "") -> Patient:
        patient = Patient(timeout=60)
        made.append(patient)
        return await patient.connect(live_stack.rasa_url, origin or live_stack.web_url)

    yield connect
    for patient in made:
        await patient.leave()


async def test_polling_handshake_carries_one_grant_for_the_web_apps_origin_and_none_for_another(live_stack):
    async with aiohttp.ClientSession() as http:
        async with http.get(live_stack.rasa_url + POLLING, headers={"Origin": live_stack.web_url}) as reply:
            assert reply.status == 200
            assert reply.headers.getall("Access-Control-Allow-Origin") == [live_stack.web_url]
            assert "Access-Control-Allow-Credentials" not in reply.headers
        async with http.get(live_stack.rasa_url + POLLING, headers={"Origin": FOREIGN_ORIGIN}) as reply:
            assert reply.status == 400
            assert "Access-Control-Allow-Origin" not in reply.headers


def test_rest_webhook_grants_the_web_apps_origin_once_and_refuses_another(live_stack):
    webhook = f"{live_stack.rasa_url}/webhooks/rest/webhook"
    body = {"sender": f"cors-{uuid.uuid4().hex[:8]}", "message": "hi"}
    allowed = requests.post(webhook, json=body, headers={"Origin": live_stack.web_url}, timeout=60)
    assert allowed.status_code == 200
    assert allowed.raw.headers.getlist("Access-Control-Allow-Origin") == [live_stack.web_url]
    foreign = requests.post(webhook, json=body, headers={"Origin": FOREIGN_ORIGIN}, timeout=60)
    assert foreign.status_code == 403
    assert "Access-Control-Allow-Origin" not in foreign.headers


async def test_standard_client_on_polling_converses_with_rasa(patients):
    patient = await patients()
    session_id = await patient.start()
    await patient.say("does it hurt?", session_id)
    replies = [await patient.next("bot_uttered")]
    while not any(re.search(r"pain|needle|twitch|ache", r.get("text", ""), re.I) for r in replies):
        replies.append(await patient.next("bot_uttered"))


async def test_second_socket_can_neither_join_nor_post_into_the_first_sockets_session(live_stack, patients):
    first = await patients()
    first_session = await first.start()
    await first.say("hi", first_session)
    await first.next("bot_uttered")
    while not await first.quiet(2):
        await first.next("bot_uttered")

    intruder = await patients()
    for guess in (first.client.get_sid(), first_session.split(".")[0]):
        assert await intruder.start(guess) not in (guess, first_session)
    await intruder.say("yes", first_session)
    refused = await intruder.next("bot_uttered")
    assert "couldn't match that message" in refused["text"]
    own = await intruder.start()
    await intruder.say("does it hurt?", own)
    await intruder.next("bot_uttered")
    assert await first.quiet(3), "the first socket received something caused by the second"

    rest = requests.post(
        f"{live_stack.rasa_url}/webhooks/rest/webhook", json={"sender": first_session, "message": "yes"}, timeout=60
    )
    assert rest.status_code == 400
