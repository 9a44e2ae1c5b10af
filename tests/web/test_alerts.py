"""Dashboard alerts, server side: the state the page's alerts read, the settings form, the reasons a
session ended, the admins' no-alert-route banner and the start-up warning (issue 22)."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest

from bot.core import clock
from bot.core.settings import Settings
from bot.core.store.models import Priority, Reason, Status
from bot.dashboard.web import alert_route, live
from bot.dashboard.web.app import create_app
from bot.dashboard.web.keys import SETTINGS
from bot.launch import NO_ALERT_ROUTE, alert_route_notice
from tests.web.conftest import signed_in_client
from tests.web.test_live import close, next_event, open_stream
from tests.web.test_pages import case_form, escalate, say, staff_settings, tracker_db  # noqa: F401 - fixtures

LIVE = {"X-Live-Refresh": "1"}


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)


async def state(client) -> dict:
    reply = await client.get(live.ALERTS_PATH, headers=LIVE)
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    return await reply.json()


def later(monkeypatch, minutes: float) -> None:
    moved = clock.now() + timedelta(minutes=minutes)
    monkeypatch.setattr(clock, "now", lambda: moved)


async def test_the_title_count_is_the_urgent_cases_nobody_has_opened(staff_client, staff_db):
    assert (await state(staff_client))["unopened_urgent"] == 0
    first = await escalate(staff_db, "s-1", reason=Reason.emergency, priority=Priority.urgent)
    second = await escalate(staff_db, "s-2", reason=Reason.adverse_event, priority=Priority.urgent)
    await escalate(staff_db, "s-3")  # not urgent
    assert (await state(staff_client))["unopened_urgent"] == 2

    assert (await case_form(staff_client, first, "status", status=Status.in_progress.value)).status == 303
    assert (await state(staff_client))["unopened_urgent"] == 1
    assert (await staff_client.get(f"/staff/escalations/{second}")).status == 200  # opening it is enough
    assert (await state(staff_client))["unopened_urgent"] == 0


async def test_the_state_carries_counts_and_settings_never_patient_data(staff_client, staff_db):
    await escalate(staff_db, "sender-secret", reason=Reason.emergency, priority=Priority.urgent,
                   name="Alex Patient", message="I have chest pain")
    body = await (await staff_client.get(live.ALERTS_PATH, headers=LIVE)).text()
    for secret in ("sender-secret", "Alex", "chest"):
        assert secret not in body
    found = await state(staff_client)
    assert found["notifications"] is True and found["sound"] is True
    assert "alert_route_problem" not in found  # staff do not get the admins' banner


async def test_the_idle_deadline_is_told_and_reading_it_is_not_activity(staff_client, monkeypatch):
    assert 14 * 60 < (await state(staff_client))["idle_seconds_left"] <= 15 * 60
    later(monkeypatch, 14)
    assert 0 < (await state(staff_client))["idle_seconds_left"] <= 60  # the page warns now
    later(monkeypatch, 1.5)
    assert (await staff_client.get(live.ALERTS_PATH, headers=LIVE)).status == 401


async def test_staying_signed_in_after_the_warning_moves_the_deadline(staff_client, monkeypatch):
    later(monkeypatch, 14.5)
    assert (await staff_client.get("/staff/api/me")).status == 200  # the warning's button
    assert (await state(staff_client))["idle_seconds_left"] > 14 * 60


async def test_each_account_saves_its_own_alert_settings(staff_client, admin_client):
    form = {"csrf_token": staff_client.csrf, "notifications": "on", "next": "/staff/escalations"}
    reply = await staff_client.post("/staff/account/alerts", data=form, allow_redirects=False)
    assert reply.status == 303 and reply.headers["Location"] == "/staff/escalations"
    assert {k: v for k, v in (await state(staff_client)).items() if k in ("notifications", "sound")} == {
        "notifications": True, "sound": False}
    page = await (await staff_client.get("/staff/")).text()
    assert 'id="alert-notifications" name="notifications" checked' in page
    assert 'id="alert-sound" name="sound">' in page

    reply = await staff_client.post("/staff/account/alerts", data={"csrf_token": staff_client.csrf,
                                                                    "next": "https://evil.example/"},
                                    allow_redirects=False)
    assert reply.headers["Location"] == "/staff/"
    found = await state(staff_client)
    assert found["notifications"] is False and found["sound"] is False
    assert (await state(admin_client))["sound"] is True  # someone else's choice is theirs


async def test_alert_settings_need_the_csrf_token(staff_client):
    reply = await staff_client.post("/staff/account/alerts", data={"sound": "on"}, allow_redirects=False)
    assert reply.status == 403


async def test_a_reply_in_a_case_i_hold_is_marked_mine(staff_client, admin_client, staff_db, tracker_db):
    mine = await escalate(staff_db, "s-mine")
    theirs = await escalate(staff_db, "s-theirs")
    sam = (await (await staff_client.get("/staff/api/me")).json())["id"]
    ada = (await (await admin_client.get("/staff/api/me")).json())["id"]
    assert (await case_form(staff_client, mine, "assign", assignee=str(sam))).status == 303
    assert (await case_form(admin_client, theirs, "assign", assignee=str(ada))).status == 303
    reply, _ = await open_stream(staff_client)
    say(tracker_db, "s-theirs", "user", "hello", time.time())
    say(tracker_db, "s-mine", "user", "hello", time.time())
    seen = {}
    while len(seen) < 2:
        event = await next_event(reply)
        if event["event"] == "message":
            seen[event["data"]["id"]] = event["data"]["mine"]
    assert seen == {mine: True, theirs: False}
    await close(reply)


async def test_the_stream_says_an_idle_session_ended_because_it_was_idle(staff_client, monkeypatch):
    monkeypatch.setattr(live, "SESSION_CHECK_SECONDS", 0.0)
    reply, _ = await open_stream(staff_client)
    later(monkeypatch, 16)
    event = await next_event(reply)
    assert event == {"event": "signed-out", "data": {"reason": "idle"}, "id": None}


async def test_the_sign_in_page_says_why_the_session_ended(anon_client):
    page = await (await anon_client.get("/staff/login?idle=1&next=/staff/")).text()
    assert "not used for 15 minutes" in page
    page = await (await anon_client.get("/staff/login?ended=1")).text()
    assert "Your session ended" in page
    page = await (await anon_client.get("/staff/login?idle=<script>")).text()
    assert "not used for" not in page and "<script>" not in page


async def test_admins_see_a_banner_while_no_alert_route_is_set_up(admin_client, staff_client):
    admin_page = await (await admin_client.get("/staff/")).text()
    assert "Nobody is alerted of urgent cases" in admin_page and "NOTIFY_WEBHOOK_URL" in admin_page
    assert (await state(admin_client))["alert_route_problem"] == alert_route.NO_TRANSPORT
    assert "Nobody is alerted" not in await (await staff_client.get("/staff/")).text()
    assert not alert_route.route_configured(staff_client.server.app[SETTINGS], None)


async def test_with_a_webhook_configured_the_banner_does_not_say_nothing_is_set_up(
        aiohttp_server, aiohttp_client, staff_settings, make_user):  # noqa: F811 - fixture
    server = await aiohttp_server(create_app(dataclasses.replace(
        staff_settings, notify_webhook_url="https://hooks.example/clinic")))
    await make_user("ada", role="admin")
    admin = await signed_in_client(aiohttp_client, server, "ada")
    assert alert_route.NO_TRANSPORT not in await (await admin.get("/staff/")).text()
    assert (await state(admin))["alert_route_problem"] != alert_route.NO_TRANSPORT


def test_make_run_warns_while_no_alert_route_is_set_up(tmp_path):
    bare = Settings(var_dir=tmp_path, session_secret="s")
    assert alert_route_notice(bare) == NO_ALERT_ROUTE
    assert "nobody is told" in NO_ALERT_ROUTE and len(NO_ALERT_ROUTE.splitlines()) <= 2
    assert alert_route_notice(Settings(var_dir=tmp_path, session_secret="s",
                                       notify_webhook_url="https://hooks.example/clinic")) == ""
