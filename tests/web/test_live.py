"""``/staff/api/events``: the event stream that keeps the dashboard live.

The stream is read the way a browser's EventSource reads it; escalations and tracker
events are written straight into the databases, as the action server and Rasa do.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from bot.core import clock
from bot.core.store import staff_sessions
from bot.core.store.models import Priority, Reason, StaffUser
from bot.dashboard.web import live
from tests.web.test_pages import XSS, escalate, say, staff_settings, tracker_db  # noqa: F401 - fixtures

STREAM = {"Accept": "text/event-stream"}


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """Poll often so the tests wait for milliseconds, not seconds."""
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)


async def next_event(reply, timeout: float = 10.0) -> dict:
    """The next event of an SSE response: ``{"event", "data", "id"}`` (pings skipped)."""
    event: dict = {"event": "message", "data": [], "id": None}

    async def read() -> dict:
        while True:
            line = (await reply.content.readline()).decode("utf-8")
            if line == "":
                raise EOFError("the stream ended")
            line = line.rstrip("\r\n")
            if line == "":
                if event["data"]:
                    return {**event, "data": json.loads("\n".join(event["data"]))}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                event["data"].append(value)
            elif name in ("event", "id"):
                event[name] = value

    return await asyncio.wait_for(read(), timeout)


async def close(reply) -> None:
    """Close the stream as a leaving browser does, and give the server a poll to notice."""
    reply.close()
    await asyncio.sleep(live.POLL_SECONDS * 4)


async def open_stream(client, **headers):
    reply = await client.get(live.PATH, headers={**STREAM, **headers})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    ready = await next_event(reply)
    assert ready["event"] == "ready"
    return reply, ready


async def test_anonymous_streams_get_401(anon_client):
    reply = await anon_client.get(live.PATH, headers=STREAM)
    assert reply.status == 401
    assert (await reply.json())["error"] == "unauthenticated"


async def test_the_probe_says_still_signed_in(staff_client, anon_client):
    assert (await staff_client.get(live.PATH + "?probe=1", headers=STREAM)).status == 204
    assert (await anon_client.get(live.PATH + "?probe=1", headers=STREAM)).status == 401


async def test_a_new_escalation_is_announced_with_ids_only(staff_client, staff_db):
    reply, _ = await open_stream(staff_client)
    case_id = await escalate(staff_db, "sender-secret", reason=Reason.emergency, priority=Priority.urgent, name=XSS,
                             message="I have chest pain")
    event = await next_event(reply)
    assert event["event"] == "escalation"
    assert event["data"] == {"id": case_id, "change": "created", "status": "new", "priority": "urgent",
                             "urgent": True}
    assert event["id"]
    await close(reply)


async def test_a_change_to_an_escalation_is_announced(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-1")
    reply, _ = await open_stream(staff_client)
    form = {"csrf_token": staff_client.csrf, "status": "in_progress"}
    assert (await staff_client.post(f"/staff/escalations/{case_id}/status", data=form,
                                    allow_redirects=False)).status == 303
    event = await next_event(reply)
    assert event["event"] == "escalation"
    assert event["data"]["id"] == case_id and event["data"]["change"] == "updated"
    assert event["data"]["status"] == "in_progress"
    await close(reply)


async def test_a_patient_message_in_an_escalated_conversation_is_announced(staff_client, staff_db, tracker_db):
    case_id = await escalate(staff_db, "s-1")
    reply, _ = await open_stream(staff_client)
    say(tracker_db, "someone-else", "user", "not escalated", time.time())
    event_id = say(tracker_db, "s-1", "user", "hello again " + XSS, time.time())
    event = await next_event(reply)
    assert event == {"event": "message", "data": {"id": case_id, "event_id": event_id, "mine": False}, "id": event["id"]}
    await close(reply)


async def test_what_was_there_before_the_stream_opened_is_not_sent_again(staff_client, staff_db, tracker_db):
    await escalate(staff_db, "s-old")
    say(tracker_db, "s-old", "user", "old message", time.time())
    reply, _ = await open_stream(staff_client)
    fresh = await escalate(staff_db, "s-new")
    event = await next_event(reply)
    assert event["event"] == "escalation" and event["data"]["id"] == fresh
    await close(reply)


async def test_a_reconnecting_browser_resumes_from_its_last_event_id(staff_client, staff_db):
    reply, ready = await open_stream(staff_client)
    await close(reply)
    missed = await escalate(staff_db, "s-missed")  # written while the browser was away
    reply, _ = await open_stream(staff_client, **{"Last-Event-ID": ready["id"]})
    event = await next_event(reply)
    assert event["event"] == "escalation" and event["data"]["id"] == missed
    await close(reply)


async def test_the_stream_says_signed_out_when_the_session_ends(staff_client, staff_db, monkeypatch):
    monkeypatch.setattr(live, "SESSION_CHECK_SECONDS", 0.0)
    reply, _ = await open_stream(staff_client)
    async with staff_db() as session, session.begin():
        user = (await session.execute(StaffUser.__table__.select().where(StaffUser.username == "sam"))).first()
        await staff_sessions.end_all_for_user(session, user.id, clock.now())
    event = await next_event(reply)
    assert event["event"] == "signed-out"
    with pytest.raises(EOFError):
        await next_event(reply)


async def test_live_refreshes_do_not_keep_an_idle_session_alive(staff_client, monkeypatch):
    def later(minutes: int) -> None:
        moved = clock.now() + timedelta(minutes=minutes)
        monkeypatch.setattr(clock, "now", lambda: moved)

    later(10)
    refresh = await staff_client.get("/staff/queue/results", headers={"X-Live-Refresh": "1"})
    assert refresh.status == 200
    later(10)  # 20 minutes after the last real activity
    assert (await staff_client.get("/staff/api/me")).status == 401


def test_cursor_tokens_round_trip_and_refuse_nonsense():
    now = datetime.now(timezone.utc)
    cursor = live.Cursor(changed=now - timedelta(minutes=1), event_id=42)
    parsed = live.Cursor.parse(cursor.token(), now)
    assert parsed is not None and parsed.event_id == 42
    assert abs((parsed.changed - cursor.changed).total_seconds()) < 1e-5
    for token in ("", "abc", "1.2.3", "-5.3", "9" * 30 + ".1", None):
        assert live.Cursor.parse(token, now) is None
    stale = live.Cursor(changed=now - timedelta(days=2), event_id=1).token()
    assert live.Cursor.parse(stale, now) is None
