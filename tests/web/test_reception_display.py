"""The reception display: an account that stays signed in on a trusted screen and sees the live
queue without patient text, and nothing else of the dashboard."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from bot.core import clock
from bot.core.store.models import (
    AuditKind, Escalation, Priority, Reason, StaffRole, StaffSession, StaffUser, Status,
)
from bot.core.store.repository import EscalationInput, add_audit, upsert_escalation
from bot.core.vocabulary import vocabulary
from bot.dashboard.staff import accounts, tokens
from bot.dashboard.web import auth
from bot.dashboard.web.display import initials, waiting_text
from tests.web.conftest import sign_in
from tests.web.routes import walk
from tests.web.test_route_table import is_public

#: A patient whose every detail is distinctive, so that any of it on the display is noticed.
NAME = "Zebedee Quizzleworth"
PHONE = "+447700900123"
EMAIL = "zebedee.quizzleworth@example.org"
MESSAGE = "my left calf is throbbing since the needling on Tuesday"
SENDER = "conversation-7f3a9c"
FORBIDDEN_TEXT = (
    "Zebedee", "Quizzleworth", "zebedee", "quizzleworth", "7700900123", "447700", "example.org", "throbbing",
    "calf", "Tuesday", SENDER,
)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def later(monkeypatch, **delta) -> None:
    moved = clock.now() + timedelta(**delta)
    monkeypatch.setattr(clock, "now", lambda: moved)


async def escalate(staff_db, sender: str, *, reason: Reason = Reason.human_request, priority: Priority = Priority.normal,
                   name: str | None = NAME, detail: str | None = PHONE, method: str = "phone",
                   message: str = MESSAGE, created_at: datetime | None = None) -> str:
    data = EscalationInput(
        sender_id=sender, channel="socketio", reason=reason, priority=priority,
        trigger={"reason": reason.value, "intent": "human_handoff", "confidence": 0.9, "personal": True,
                 "message": message, "at": datetime.now(timezone.utc).isoformat()},
        transcript=[{"from": "patient", "text": message, "time": time.time() - 60}],
        contact_name=name, contact_method=method if detail else None, contact_detail=detail,
        consent_given=bool(detail),
    )
    async with staff_db() as session, session.begin():
        stored = await upsert_escalation(session, data)
        await add_audit(session, AuditKind.escalation_created, escalation_id=stored.record.id, sender_id=sender,
                        detail={"reason": reason.value})
        case_id = stored.record.id
        if created_at is not None:
            await session.execute(update(Escalation).where(Escalation.id == case_id)
                                  .values(created_at=created_at, updated_at=created_at))
    return case_id


async def reception_client(aiohttp_client, staff_server, make_user, username: str = "desk"):
    """A reception account signed in through the form; ``client.csrf`` from the display's sign-out form."""
    await make_user(username, role="reception", display_name="Front desk")
    client = await aiohttp_client(staff_server)
    reply = await sign_in(client, username)
    assert reply.status == 303, await reply.text()
    page = await client.get("/staff/display")
    assert page.status == 200
    client.csrf = CSRF_FIELD.search(await page.text()).group(1)
    return client


@pytest.fixture
async def desk(aiohttp_client, staff_server, make_user):
    return await reception_client(aiohttp_client, staff_server, make_user)


# Initials and waiting time


@pytest.mark.parametrize("name, expected", [
    ("Zebedee Quizzleworth", "ZQ"),
    ("  anna  ", "A"),
    ("jean-luc de la croix", "JC"),
    ("Émile Zola", "ÉZ"),
    ("Mary Ann 'Polly' O'Brien", "MO"),
    ("", "—"),
    (None, "—"),
    ("+44 7700 900123", "—"),
    ("123 Sam", "S"),
])
def test_initials_are_the_first_letters_of_the_first_and_last_words(name, expected):
    assert initials(name) == expected


@pytest.mark.parametrize("waited, expected", [
    (timedelta(seconds=20), "Under a minute"),
    (timedelta(minutes=12, seconds=59), "12 min"),
    (timedelta(hours=2), "2 h"),
    (timedelta(hours=2, minutes=5), "2 h 5 min"),
    (timedelta(days=3, hours=4, minutes=30), "3 d 4 h"),
    (timedelta(days=1), "1 d"),
    (timedelta(seconds=-5), "Under a minute"),
])
def test_waiting_time_in_words(waited, expected):
    assert waiting_text(waited) == expected


# Creating reception accounts


async def test_an_admin_creates_a_reception_account_on_the_accounts_page(admin_client, staff_db):
    page = await (await admin_client.get("/staff/admin/users")).text()
    assert '<option value="reception"' in page

    reply = await admin_client.post("/staff/admin/users", data={
        "csrf_token": admin_client.csrf, "username": "frontdesk", "display_name": "Front desk", "role": "reception",
    })

    assert reply.status == 200, await reply.text()
    async with staff_db() as session:
        user = await accounts.get_user(session, "frontdesk")
    assert user.role == StaffRole.reception and user.must_change_password


async def test_an_admin_creates_and_changes_reception_accounts_through_the_api(admin_client, make_user):
    created = await admin_client.post("/staff/api/users", json={"username": "screen", "role": "reception"},
                                      headers={"X-CSRF-Token": admin_client.csrf})
    assert created.status == 201
    assert (await created.json())["user"]["role"] == "reception"

    user = await make_user("tom")
    changed = await admin_client.post(f"/staff/api/users/{user.id}/role", json={"role": "reception"},
                                      headers={"X-CSRF-Token": admin_client.csrf})
    assert changed.status == 200
    assert (await changed.json())["user"]["role"] == "reception"
    bad = await admin_client.post("/staff/api/users", json={"username": "x1", "role": "superuser"},
                                  headers={"X-CSRF-Token": admin_client.csrf})
    assert bad.status == 400


async def test_changing_an_account_to_or_from_reception_signs_it_out(staff_client, admin_client, staff_db):
    async with staff_db() as session:
        sam = await accounts.get_user(session, "sam")
    reply = await admin_client.post(f"/staff/admin/users/{sam.id}/role",
                                    data={"csrf_token": admin_client.csrf, "role": "reception"}, allow_redirects=False)
    assert reply.status == 303

    # The staff session would otherwise become a session without an idle timeout.
    assert (await staff_client.get("/staff/display", allow_redirects=False)).status == 303
    assert (await staff_client.get("/staff/api/display")).status == 401


# Signing in and staying signed in


async def test_a_reception_account_signs_in_and_lands_on_the_display(anon_client, make_user):
    await make_user("desk", role="reception")

    reply = await sign_in(anon_client, "desk")
    assert reply.status == 303
    home = await anon_client.get(reply.headers["Location"], allow_redirects=False)

    assert home.status == 303 and home.headers["Location"] == "/staff/display"
    page = await anon_client.get("/staff/display")
    assert page.status == 200
    assert "Reception display" in await page.text()


async def test_a_one_time_password_is_changed_first_then_the_display_follows(anon_client, make_user, staff_db):
    user = await make_user("desk", role="reception")
    async with staff_db() as session, session.begin():
        await session.execute(update(StaffUser).where(StaffUser.id == user.id).values(must_change_password=True))
    await sign_in(anon_client, "desk")

    display = await anon_client.get("/staff/display", allow_redirects=False)
    assert display.status == 303 and display.headers["Location"] == "/staff/account/password"
    form = await anon_client.get("/staff/account/password")
    token = CSRF_FIELD.search(await form.text()).group(1)
    new = "violet harbour lantern sixteen"
    changed = await anon_client.post("/staff/account/password", data={
        "csrf_token": token, "current_password": "correct horse battery staple", "new_password": new,
        "new_password_again": new,
    })

    assert changed.status == 200 and str(changed.url).endswith("/staff/display")


async def test_a_reception_session_has_no_idle_deadline_but_a_long_lifetime(desk, staff_db, staff_settings):
    async with staff_db() as session:
        row = (await session.execute(select(StaffSession).where(StaffSession.ended_at.is_(None)))).scalar_one()

    assert row.idle_until == row.expires_at
    lifetime = row.expires_at - row.created_at
    assert lifetime == timedelta(days=staff_settings.staff_reception_session_days) == timedelta(days=30)


async def test_the_display_stays_signed_in_long_past_the_idle_timeout(desk, monkeypatch):
    later(monkeypatch, hours=2)  # no request at all for eight idle timeouts
    assert (await desk.get("/staff/api/display")).status == 200

    for _ in range(10):  # two weeks of live refreshes, well past a staff session's 12 hours
        later(monkeypatch, days=1, hours=9)
        reply = await desk.get("/staff/api/display", headers={"X-Live-Refresh": "1"})
        assert reply.status == 200


async def test_the_display_signs_out_at_the_end_of_its_lifetime(desk, monkeypatch):
    later(monkeypatch, days=29, hours=23)
    assert (await desk.get("/staff/api/display", headers={"X-Live-Refresh": "1"})).status == 200
    later(monkeypatch, hours=2)

    assert (await desk.get("/staff/api/display")).status == 401
    page = await desk.get("/staff/display", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/staff/login")


async def test_the_sign_in_page_says_why_the_display_was_signed_out(anon_client):
    page = await (await anon_client.get("/staff/login?next=/staff/display&display=1")).text()

    assert "The reception display was signed out: its session lasts 30 days" in page


async def test_a_staff_session_still_signs_out_when_idle(staff_client, monkeypatch):
    later(monkeypatch, minutes=16)

    assert (await staff_client.get("/staff/api/display")).status == 401


async def test_the_display_signs_out(desk):
    reply = await desk.post("/staff/logout", data={"csrf_token": desk.csrf}, allow_redirects=False)

    assert reply.status == 303 and "signed_out=1" in reply.headers["Location"]
    assert (await desk.get("/staff/api/display")).status == 401


# What the display shows


async def test_the_display_shows_initials_reason_priority_and_waiting_time(desk, staff_db):
    await escalate(staff_db, SENDER, reason=Reason.emergency, priority=Priority.urgent,
                   created_at=clock.now() - timedelta(minutes=42))
    labels = vocabulary().labels

    page = await (await desk.get("/staff/display")).text()
    data = await (await desk.get("/staff/api/display")).json()

    assert "ZQ" in page and labels["emergency"] in page and "Urgent" in page and "42 min" in page
    [row] = data["cases"]
    assert row["initials"] == "ZQ"
    assert row["reason"] == labels["emergency"]
    assert row["urgent"] is True and row["priority"] == "urgent"
    assert row["waiting"] == "42 min"
    assert data["total"] == 1 and data["unopened_urgent"] == 1


async def test_the_display_carries_no_patient_text_or_contact_details(desk, staff_client, staff_db):
    urgent = await escalate(staff_db, SENDER, reason=Reason.emergency, priority=Priority.urgent)
    await escalate(staff_db, "conversation-other", name="zebedee quizzleworth", detail=EMAIL, method="email")
    await escalate(staff_db, "conversation-third", name=None, detail=None)
    note = await staff_client.post(f"/staff/escalations/{urgent}/notes",
                                   data={"csrf_token": staff_client.csrf, "body": "Quizzleworth called back"})
    assert note.status < 400

    page = await (await desk.get("/staff/display")).text()
    raw = await (await desk.get("/staff/api/display")).text()

    for text in FORBIDDEN_TEXT:
        assert text not in page, text
        assert text not in raw, text
    assert page.count(">ZQ<") == 2 and raw.count('"ZQ"') == 2
    assert page.count(">—<") == 1
    assert "/staff/escalations" not in page and "alerts.js" not in page


async def test_urgent_cases_come_first_then_the_longest_waiting_and_closed_ones_are_left_out(desk, staff_db):
    now = clock.now()
    oldest = await escalate(staff_db, "a", name="Old Normal", created_at=now - timedelta(hours=3))
    newer = await escalate(staff_db, "b", name="New Normal", created_at=now - timedelta(minutes=5))
    high = await escalate(staff_db, "c", name="High Priority", reason=Reason.adverse_event, priority=Priority.high,
                          created_at=now - timedelta(minutes=1))
    urgent = await escalate(staff_db, "d", name="Urgent Case", reason=Reason.emergency, priority=Priority.urgent,
                            created_at=now - timedelta(minutes=2))
    done = await escalate(staff_db, "e", name="Done Case", created_at=now - timedelta(hours=5))
    async with staff_db() as session, session.begin():
        await session.execute(update(Escalation).where(Escalation.id == done).values(status=Status.resolved))
        await session.execute(update(Escalation).where(Escalation.id == newer).values(status=Status.in_progress))

    data = await (await desk.get("/staff/api/display")).json()

    assert [row["id"] for row in data["cases"]] == [urgent, high, oldest, newer]
    assert [row["initials"] for row in data["cases"]] == ["UC", "HP", "ON", "NN"]
    assert data["cases"][3]["status"] == "in_progress" and data["total"] == 4


async def test_staff_may_open_the_display_too(staff_client, staff_db):
    await escalate(staff_db, SENDER)

    page = await staff_client.get("/staff/display")

    assert page.status == 200
    text = await page.text()
    assert "ZQ" in text and "Zebedee" not in text


# Nothing else


def route_names(app) -> dict[str, set[str]]:
    """Each route template's names (a path registered for GET and POST may carry two)."""
    names: dict[str, set[str]] = {}
    for resource in app.router.resources():
        if resource.name:
            names.setdefault(resource.canonical, set()).add(resource.name)
    return names


async def test_every_other_route_refuses_a_reception_session(staff_app, desk, staff_db):
    case_id = await escalate(staff_db, SENDER)
    names = route_names(staff_app)
    checked = []
    for route in walk(staff_app):
        if is_public(route) or route.method == "HEAD":
            continue
        if names.get(route.template, set()) & auth.RECEPTION_ROUTES:
            continue
        path = route.path.replace("6f1c1f7e-2a4b-4c8e-9d3f-0a1b2c3d4e5f", case_id)
        reply = await desk.request(route.method, path, headers={"X-CSRF-Token": desk.csrf}, allow_redirects=False)
        body = await reply.text()
        if reply.status == 303:
            assert route.method == "GET" and not route.template.startswith("/staff/api/"), (route.method, route.template)
            assert reply.headers["Location"] == "/staff/display", (route.method, route.template)
        else:
            assert reply.status == 403, (route.method, route.template, reply.status)
        assert "Zebedee" not in body and PHONE not in body
        checked.append((route.method, route.template))
    templates = {template for _, template in checked}
    assert {"/staff/", "/staff/escalations/{id}", "/staff/api/escalations", "/staff/admin/users",
            "/staff/api/me", "/staff/api/events", "/staff/api/alerts", "/staff/search"} <= templates
    assert ("POST", "/staff/escalations/{id}/status") in checked
    # Refused, not merely sent elsewhere: nothing was changed, and the display still works.
    async with staff_db() as session:
        row = await session.get(Escalation, case_id)
    assert row.status == Status.new and row.assignee_id is None
    assert (await desk.get("/staff/api/display")).status == 200


def test_reception_reaches_only_the_display_sign_out_and_password_change(staff_app):
    names = route_names(staff_app)
    reachable = {template for template, found in names.items() if found & auth.RECEPTION_ROUTES}

    assert reachable == {"/staff/display", "/staff/api/display", "/staff/logout", "/staff/account/password"}


async def test_unknown_dashboard_paths_refuse_a_reception_session(desk):
    assert (await desk.get("/staff/api/no-such-thing")).status == 403
    page = await desk.get("/staff/no-such-page", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/staff/display"


async def test_a_reception_accounts_api_token_is_refused_everywhere(staff_app, anon_client, make_user, staff_db):
    user = await make_user("desk", role="reception")
    async with staff_db() as session, session.begin():
        token, _ = await tokens.issue(session, user, "script", actor="test")
    for route in walk(staff_app):
        if is_public(route) or route.method == "HEAD":
            continue
        reply = await anon_client.request(route.method, route.path, headers={"Authorization": f"Bearer {token}"},
                                          allow_redirects=False)
        assert reply.status == 403, (route.method, route.template, reply.status)


def test_require_role_takes_no_reception_routes():
    with pytest.raises(ValueError):
        auth.require_role("reception")
    identity = auth.StaffIdentity(1, "desk", "Desk", "reception", "session")
    assert not auth.has_role(identity, "staff") and not auth.has_role(identity, "admin")
    assert auth.has_role(auth.StaffIdentity(2, "ada", "Ada", "admin", "session"), "staff")


async def test_the_password_page_of_a_reception_account_carries_no_alert_settings(desk):
    page = await (await desk.get("/staff/account/password")).text()

    assert "alert-settings-form" not in page and "alerts.js" not in page
    assert "Change your password" in page
