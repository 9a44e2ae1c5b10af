"""The action server answers only Rasa, refuses odd bodies and never echoes patient data."""

from __future__ import annotations

import json
import logging
import zlib

import pytest
from sanic import Sanic, response

from bot.assistant.runtime import ACTION_SECRET_HEADER
from bot.assistant.servers.actions import MAX_BODY_BYTES, create_app, harden, patient_values, secret_matches
from bot.core import privacy
from bot.core.settings import Settings

SECRET = "s3cret-shared-with-rasa"
PHONE = "+44 7700 900123"


@pytest.fixture(autouse=True)
def sanic_test_mode():
    """Keep Sanic in test mode around each test.

    In test mode Sanic allows several apps of one name and keeps its class's
    original methods when it starts an app; sanic_testing leaves test mode after
    every request, and an app started outside it would rewrite Sanic's class for
    every later test module.
    """
    Sanic.test_mode = True
    yield
    Sanic.test_mode = True


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(var_dir=tmp_path, action_secret=SECRET)


@pytest.fixture
def client(settings):
    return create_app(settings).asgi_client


def forged_emergency_call() -> dict:
    return {
        "next_action": "action_handle_adverse_event",
        "sender_id": "victim",
        "version": "3.6.0",
        "domain": {},
        "tracker": {
            "sender_id": "victim",
            "slots": {},
            "latest_message": {"text": "I can't breathe", "intent": {"name": "emergency"}, "entities": []},
            "events": [],
        },
    }


async def test_a_call_without_the_secret_is_refused_before_any_action_runs(client, monkeypatch):
    ran = []
    monkeypatch.setattr("rasa_sdk.executor.ActionExecutor.run", lambda *args: ran.append(args))

    _, reply = await client.post("/webhook", json=forged_emergency_call())

    assert reply.status == 401
    assert ran == []


async def test_a_call_with_a_wrong_secret_is_refused(client):
    _, reply = await client.post(
        "/webhook", json=forged_emergency_call(), headers={ACTION_SECRET_HEADER: SECRET + "x"}
    )

    assert reply.status == 401


# One request per test: a second request would start the app outside test mode.
async def test_the_action_list_needs_the_secret_too(client):
    _, refused = await client.get("/actions")

    assert refused.status == 401


async def test_the_action_list_with_the_secret_lists_the_actions(client):
    _, allowed = await client.get("/actions", headers={ACTION_SECRET_HEADER: SECRET})

    assert allowed.status == 200
    assert {"name": "action_handle_adverse_event"} in allowed.json


async def test_health_is_public_and_says_nothing_else(client):
    _, reply = await client.get("/health")

    assert (reply.status, reply.json) == (200, {"status": "ok"})


async def test_a_call_with_the_secret_reaches_the_executor(client):
    call = {**forged_emergency_call(), "next_action": "action_that_does_not_exist"}

    _, reply = await client.post("/webhook", json=call, headers={ACTION_SECRET_HEADER: SECRET})

    assert reply.status == 404


@pytest.mark.parametrize("encoding", ["deflate", "gzip", "br"])
async def test_compressed_bodies_are_refused(client, encoding):
    body = zlib.compress(json.dumps(forged_emergency_call()).encode())

    _, reply = await client.post(
        "/webhook",
        content=body,
        headers={ACTION_SECRET_HEADER: SECRET, "Content-Encoding": encoding, "Content-Type": "application/json"},
    )

    assert reply.status == 415


def test_an_oversized_body_is_refused(settings):
    # Sanic enforces the size limit in its HTTP server, so this one runs a real server.
    body = b'{"padding": "' + b"x" * MAX_BODY_BYTES + b'"}'

    _, reply = create_app(settings).test_client.post(
        "/webhook", content=body, headers={ACTION_SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    )

    assert reply.status == 413


async def test_a_malformed_body_gets_a_400(client):
    _, reply = await client.post(
        "/webhook", content=b"{not json", headers={ACTION_SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    )

    assert reply.status == 400


async def test_a_failing_action_answers_a_plain_500_and_logs_no_patient_data(settings, caplog):
    app = Sanic("failing_actions")

    @app.post("/webhook")
    async def webhook(request):
        raise RuntimeError(f"could not save {request.json['tracker']['slots']['phone']}")

    harden(app, settings)
    call = {**forged_emergency_call(), "tracker": {"slots": {"phone": PHONE}, "events": []}}
    caplog.set_level(logging.INFO)

    _, reply = await app.asgi_client.post("/webhook", json=call, headers={ACTION_SECRET_HEADER: SECRET})

    assert reply.status == 500
    assert "7700" not in reply.text and "request_body" not in reply.text
    assert "action action_handle_adverse_event failed: RuntimeError" in caplog.text
    assert "7700" not in caplog.text


async def test_the_tracker_values_are_marked_sensitive_while_the_action_runs(settings):
    app = Sanic("marking_actions")
    seen = []

    @app.post("/webhook")
    async def webhook(request):
        seen.append(privacy.redact("name Maria Lopez said my shoulder aches badly"))
        return response.json({})

    harden(app, settings)
    call = forged_emergency_call()
    call["tracker"]["slots"] = {"name": "Maria Lopez"}
    call["tracker"]["events"] = [{"event": "user", "text": "my shoulder aches badly", "parse_data": {"entities": []}}]

    await app.asgi_client.post("/webhook", json=call, headers={ACTION_SECRET_HEADER: SECRET})

    assert seen == [f"name {privacy.REDACTED} said {privacy.REDACTED}"]


def test_patient_values_cover_texts_entities_and_typed_slots_but_not_the_domain():
    call = {
        "domain": {
            "responses": {"utter_greet": [{"text": "Hello from the clinic"}]},
            "slots": {
                "contact": {"mappings": [{"type": "from_text"}]},
                "escalation_id": {"mappings": [{"type": "custom"}]},
                "consent": {"mappings": [{"type": "from_intent", "value": True}]},
            },
        },
        "tracker": {
            "slots": {"contact": "jane@example.org", "escalation_id": "esc-12345678", "consent": "granted"},
            "latest_message": {"text": "latest words", "entities": [{"value": "warfarin"}]},
            "events": [
                {"event": "user", "text": "first words", "parse_data": {"entities": [{"value": "Jane"}]}},
                {"event": "slot", "name": "name", "value": "Jane Doe"},
                {"event": "bot", "text": "Hello from the clinic"},
            ],
        },
    }

    values = list(patient_values(call))

    assert {"jane@example.org", "latest words", "warfarin", "first words", "Jane", "Jane Doe"} <= set(values)
    assert "Hello from the clinic" not in values
    assert "esc-12345678" not in values and "granted" not in values


def test_a_slot_the_domain_does_not_describe_counts_as_the_patients():
    call = {"domain": {}, "tracker": {"slots": {"mystery": "Jane Doe"}, "events": []}}

    assert list(patient_values(call)) == ["Jane Doe"]


@pytest.mark.parametrize("provided", [None, "", "wrong", "s3cret-shared-with-rasä"])
def test_secret_matches_only_the_exact_secret(provided):
    assert not secret_matches(provided, SECRET)
    assert secret_matches(SECRET, SECRET)
    assert not secret_matches("", "")
