"""End-to-end: what the running processes expose, and to whom.

The action server answers only Rasa (shared secret); the Rasa HTTP API is off
unless asked for, and then only with a JWT in the Authorization header; no
secret is visible in any process's arguments.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import jwt
import pytest
import requests

from bot.assistant.runtime import ACTION_SECRET_HEADER
from bot.assistant.servers.rasa_api import auth_header
from tests.e2e.test_rest_conversation import escalations

pytestmark = pytest.mark.e2e


def forged_emergency_call(sender_id: str) -> dict:
    """What an attacker would post to store a made-up urgent escalation."""
    latest = {
        "text": "I can't breathe",
        "intent": {"name": "report_adverse_event", "confidence": 0.99},
        "entities": [],
        "safety": {"reason": "emergency", "matched_terms": ["breathing difficulty"], "personal": True},
    }
    return {
        "next_action": "action_handle_adverse_event",
        "sender_id": sender_id,
        "version": "3.6.0",
        "domain": {},
        "tracker": {
            "sender_id": sender_id,
            "slots": {},
            "latest_message": latest,
            "events": [{"event": "user", "text": latest["text"], "parse_data": latest}],
            "latest_action_name": "action_listen",
            "active_loop": {},
            "paused": False,
        },
    }


@pytest.mark.parametrize("headers", [{}, {ACTION_SECRET_HEADER: "guessed"}], ids=["no secret", "wrong secret"])
def test_a_forged_action_call_is_refused_and_stores_nothing(live_stack, headers):
    victim = f"forged-{uuid.uuid4().hex[:12]}"
    url = f"http://127.0.0.1:{live_stack.settings.action_port}/webhook"

    reply = requests.post(url, json=forged_emergency_call(victim), headers=headers, timeout=10)

    assert reply.status_code == 401
    assert victim not in reply.text
    assert escalations(live_stack, victim) == []


def test_the_same_call_with_the_secret_is_what_rasa_does(live_stack):
    victim = f"secret-{uuid.uuid4().hex[:12]}"
    url = f"http://127.0.0.1:{live_stack.settings.action_port}/webhook"

    reply = requests.post(
        url,
        json=forged_emergency_call(victim),
        headers={ACTION_SECRET_HEADER: live_stack.settings.action_secret},
        timeout=30,
    )

    assert reply.status_code == 200
    assert [record.sender_id for record in escalations(live_stack, victim)] == [victim]


def test_the_action_server_health_check_is_public_and_bare(live_stack):
    reply = requests.get(f"http://127.0.0.1:{live_stack.settings.action_port}/health", timeout=10)

    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


def test_the_rasa_http_api_is_off_by_default(live_stack):
    for path in ("/status", "/version", "/model/parse"):
        assert requests.get(f"{live_stack.rasa_url}{path}", timeout=10).status_code == 404


def test_no_secret_is_in_any_process_arguments(live_stack):
    s = live_stack.settings
    for name, service in live_stack.stack.services.items():
        arguments = Path(f"/proc/{service.process.pid}/cmdline").read_bytes().decode(errors="replace")
        for secret in (s.action_secret, s.rasa_jwt_secret, s.session_secret):
            assert secret not in arguments, f"a secret is in the arguments of {name}"


def test_every_process_listens_only_on_the_bind_host(live_stack):
    s = live_stack.settings
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:] + Path("/proc/net/tcp6").read_text().splitlines()[1:]
    local = {line.split()[1] for line in listening if line.split()[3] == "0A"}  # 0A: LISTEN
    for port in (s.rasa_port, s.action_port, s.web_port):
        addresses = {address for address in local if address.endswith(f":{port:04X}")}
        assert addresses == {f"0100007F:{port:04X}"}, f"port {port} listens on {addresses}"


def test_with_the_api_on_only_a_signed_jwt_in_the_header_gets_in(live_stack):
    live_stack.stack.restart("rasa", timeout=240, env={"RASA_API": "true"})
    try:
        status = f"{live_stack.rasa_url}/status"
        forged = jwt.encode({"user": {"username": "x", "role": "admin"}}, "not-the-secret", algorithm="HS256")

        assert requests.get(status, timeout=10).status_code == 401
        assert requests.get(f"{status}?token=anything", timeout=10).status_code == 401
        assert requests.get(status, headers={"Authorization": f"Bearer {forged}"}, timeout=10).status_code == 401
        assert requests.get(status, headers=auth_header(live_stack.settings), timeout=10).status_code == 200
        parsed = requests.post(
            f"{live_stack.rasa_url}/model/parse",
            json={"text": "does it hurt?"},
            headers=auth_header(live_stack.settings),
            timeout=30,
        )
        assert parsed.status_code == 200 and parsed.json()["intent"]["name"]
    finally:
        live_stack.restart_rasa()


def test_the_rasa_server_refuses_an_oversized_body_before_reading_it(live_stack):
    reply = requests.post(
        f"{live_stack.rasa_url}/webhooks/rest/webhook",
        data=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    assert reply.status_code == 413
