"""The takeover's routes: JSON for the script, plain forms for the page, the same rules as every /staff route."""

from __future__ import annotations

import dataclasses
import re

import pytest
from aiohttp import web

from tests.staff.test_takeover import SECRET, SENDER, FakeBridge, escalation

API = "/staff/api/escalations"


@pytest.fixture
async def bridge(aiohttp_server, staff_db):
    fake = FakeBridge(staff_db)
    app = web.Application()
    app.router.add_post("/webhooks/staff_bridge/{op}", fake.handle)
    fake.server = await aiohttp_server(app)
    return fake


@pytest.fixture
def staff_settings(staff_settings, bridge):
    """The dashboard's settings, with Rasa's internal URL pointing at the fake bridge."""
    return dataclasses.replace(
        staff_settings, staff_bridge_url=str(bridge.server.make_url("")).rstrip("/"), staff_bridge_secret=SECRET
    )


def csrf(client) -> dict:
    return {"X-CSRF-Token": client.csrf}


async def test_take_over_write_and_hand_back_through_the_json_api(staff_client, staff_db, bridge):
    case = await escalation(staff_db)

    taken = await staff_client.post(f"{API}/{case}/takeover", headers=csrf(staff_client))
    assert taken.status == 200, await taken.text()
    assert (await taken.json())["line"]["text"].startswith("Sam Staff from ")

    sent = await staff_client.post(f"{API}/{case}/messages", json={"text": "Hello from Sam"}, headers=csrf(staff_client))
    body = await sent.json()
    assert (sent.status, body["delivered"], body["line"]["author"]) == (200, True, "Sam Staff")

    state = await (await staff_client.get(f"{API}/{case}/takeover")).json()
    assert state["holder"]["username"] == "sam" and state["mine"] is True
    assert [line["kind"] for line in state["lines"]] == ["joined", "message"]

    back = await staff_client.post(f"{API}/{case}/handback", headers=csrf(staff_client))
    assert back.status == 200 and (await back.json())["line"]["kind"] == "left"
    assert [op for op, _ in bridge.calls] == ["takeover", "message", "presence", "handback"]
    assert all(body["sender_id"] == SENDER for _, body in bridge.calls)


async def test_posts_without_the_csrf_token_are_refused_and_reach_nobody(staff_client, staff_db, bridge):
    case = await escalation(staff_db)

    for path in ("takeover", "messages", "handback"):
        reply = await staff_client.post(f"{API}/{case}/{path}", json={"text": "x"})
        assert reply.status == 403, path

    assert bridge.calls == []


async def test_refusals_are_json_with_a_code_and_a_message(staff_client, staff_db, bridge):
    rest_case = await escalation(staff_db, channel="rest", sender="rest-1")
    case = await escalation(staff_db, sender="c" * 22 + "." + "d" * 22)

    reply = await staff_client.post(f"{API}/{rest_case}/takeover", headers=csrf(staff_client))
    assert (reply.status, (await reply.json())["error"]) == (409, "not_web_chat")
    reply = await staff_client.post(f"{API}/{case}/messages", json={"text": "hi"}, headers=csrf(staff_client))
    assert (reply.status, (await reply.json())["error"]) == (409, "not_holding")
    await staff_client.post(f"{API}/{case}/takeover", headers=csrf(staff_client))
    reply = await staff_client.post(f"{API}/{case}/messages", json={"text": "   "}, headers=csrf(staff_client))
    assert (reply.status, (await reply.json())["error"]) == (400, "bad_request")
    reply = await staff_client.post(f"{API}/{case}/messages", data=b"[", headers={**csrf(staff_client),
                                                                               "Content-Type": "application/json"})
    assert reply.status == 400
    reply = await staff_client.get(f"{API}/6f1c1f7e-2a4b-4c8e-9d3f-0a1b2c3d4e5f/takeover")
    assert reply.status == 404
    bridge.refuse["message"] = (500, {})
    reply = await staff_client.post(f"{API}/{case}/messages", json={"text": "hi"}, headers=csrf(staff_client))
    assert (reply.status, (await reply.json())["error"]) == (503, "chat_server_unavailable")


async def test_the_page_forms_post_to_the_same_routes_and_come_back_to_the_page(staff_client, staff_db, bridge):
    case = await escalation(staff_db)

    reply = await staff_client.post(f"{API}/{case}/takeover", data={"csrf_token": staff_client.csrf},
                                    allow_redirects=False)
    assert reply.status == 303
    assert reply.headers["Location"] == f"/staff/escalations/{case}?chat=taken#takeover"
    bridge.open = False
    reply = await staff_client.post(f"{API}/{case}/messages", data={"csrf_token": staff_client.csrf, "text": "hi"},
                                    allow_redirects=False)
    assert reply.headers["Location"] == f"/staff/escalations/{case}?chat=kept#takeover"
    reply = await staff_client.post(f"{API}/{case}/messages", data={"csrf_token": staff_client.csrf, "text": ""},
                                    allow_redirects=False)
    assert reply.headers["Location"] == f"/staff/escalations/{case}?chat_error=bad_request#takeover"


async def test_the_conversation_page_shows_the_takeover_block(staff_client, staff_db, bridge):
    case = await escalation(staff_db)

    page = await (await staff_client.get(f"/staff/escalations/{case}")).text()
    assert 'id="takeover"' in page and "Take over the chat" in page

    await staff_client.post(f"{API}/{case}/takeover", headers=csrf(staff_client))
    bridge.open = False
    await staff_client.post(f"{API}/{case}/messages", json={"text": "<img src=x onerror=alert(1)>"},
                            headers=csrf(staff_client))
    page = await (await staff_client.get(f"/staff/escalations/{case}?chat=kept")).text()
    assert "Hand back to the assistant" in page
    assert "the patient&#39;s chat is closed" in page or "the patient's chat is closed" in page
    assert "this conversation (socketio)" in page  # the contact details given
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


async def test_a_rest_conversation_page_offers_no_takeover(staff_client, staff_db, bridge):
    case = await escalation(staff_db, channel="rest", sender="rest-1")

    page = await (await staff_client.get(f"/staff/escalations/{case}")).text()

    assert "Take over the chat" not in page
    assert re.search(r"only.*website chat", page, re.IGNORECASE | re.DOTALL)
    assert bridge.calls == []
