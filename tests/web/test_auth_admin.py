"""The admin accounts page and /staff/api/users: create, disable, enable, reset, role; all audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.core.store.models import AuditEvent, AuditKind
from bot.dashboard.staff import accounts
from tests.web.conftest import PASSWORD, sign_in

ONE_TIME = re.compile(r'id="one-time-password">([^<]+)<')


async def user_id(staff_db, username: str) -> int:
    async with staff_db() as session:
        return (await accounts.get_user(session, username)).id


async def audit(staff_db) -> list[AuditEvent]:
    async with staff_db() as session:
        return list((await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars())


async def test_the_page_lists_the_accounts(admin_client, make_user):
    await make_user("rita", display_name="Rita Reception")

    page = await admin_client.get("/staff/admin/users")

    text = await page.text()
    assert page.status == 200
    assert "Rita Reception" in text and "ada" in text
    assert 'href="/staff/admin/users" aria-current="page"' in text or "/staff/admin/users" in text


async def test_creating_an_account_shows_its_one_time_password_once(admin_client, aiohttp_client, staff_server, staff_db):
    reply = await admin_client.post("/staff/admin/users", data={
        "csrf_token": admin_client.csrf, "username": "Nia", "display_name": "Nia Physio", "role": "staff",
    })

    text = await reply.text()
    assert reply.status == 200
    one_time = ONE_TIME.search(text).group(1)
    assert one_time not in await (await admin_client.get("/staff/admin/users")).text()
    newcomer = await aiohttp_client(staff_server)
    first = await sign_in(newcomer, "nia", one_time)
    assert first.headers["Location"] == "/staff/account/password"
    [created] = [event for event in await audit(staff_db) if event.detail.get("username") == "nia"]
    assert created.kind == AuditKind.staff_user_created and created.actor == "ada"


async def test_a_taken_username_is_refused_on_the_form(admin_client, make_user):
    await make_user("rita")

    reply = await admin_client.post("/staff/admin/users", data={
        "csrf_token": admin_client.csrf, "username": "RITA", "display_name": "Other Rita", "role": "staff",
    })

    assert reply.status == 400
    text = await reply.text()
    assert "already exists" in text and 'value="Other Rita"' in text
    assert ONE_TIME.search(text) is None


async def test_disabling_from_the_page_signs_the_person_out(admin_client, staff_client, staff_db):
    sam = await user_id(staff_db, "sam")

    reply = await admin_client.post(f"/staff/admin/users/{sam}/disable", data={"csrf_token": admin_client.csrf},
                                    allow_redirects=False)

    assert reply.status == 303 and reply.headers["Location"] == "/staff/admin/users"
    assert "sam is disabled" in await (await admin_client.get("/staff/admin/users")).text()
    assert (await staff_client.get("/staff/api/me")).status == 401
    assert (await audit(staff_db))[-1].kind == AuditKind.staff_user_disabled


async def test_an_admin_cannot_disable_their_own_account(admin_client, staff_db):
    ada = await user_id(staff_db, "ada")

    reply = await admin_client.post(f"/staff/admin/users/{ada}/disable", data={"csrf_token": admin_client.csrf})

    page = await reply.text()  # the redirect back to the page, followed
    assert "You cannot disable your own account" in page
    assert (await admin_client.get("/staff/api/me")).status == 200


async def test_resetting_a_password_ends_their_sessions_and_shows_the_new_one_once(admin_client, staff_client, staff_db, aiohttp_client, staff_server):
    sam = await user_id(staff_db, "sam")

    reply = await admin_client.post(f"/staff/admin/users/{sam}/reset-password", data={"csrf_token": admin_client.csrf})

    one_time = ONE_TIME.search(await reply.text()).group(1)
    assert (await staff_client.get("/staff/api/me")).status == 401
    fresh = await aiohttp_client(staff_server)
    assert (await sign_in(fresh, "sam", PASSWORD)).status == 401
    assert (await sign_in(fresh, "sam", one_time)).status == 303
    assert AuditKind.staff_password_reset in [event.kind for event in await audit(staff_db)]


async def test_changing_a_role_from_the_page(admin_client, staff_client, staff_db):
    sam = await user_id(staff_db, "sam")

    await admin_client.post(f"/staff/admin/users/{sam}/role", data={"csrf_token": admin_client.csrf, "role": "admin"})

    assert (await (await staff_client.get("/staff/api/me")).json())["role"] == "admin"
    assert (await staff_client.get("/staff/admin/users")).status == 200


async def test_names_are_shown_escaped(admin_client, make_user):
    await make_user("mallory", display_name='<img src=x onerror=alert(1)>')

    text = await (await admin_client.get("/staff/admin/users")).text()

    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


async def test_the_json_api_manages_accounts(admin_client, staff_db):
    headers = {"X-CSRF-Token": admin_client.csrf}
    created = await admin_client.post("/staff/api/users", json={"username": "nia", "display_name": "Nia", "role": "staff"},
                                      headers=headers)
    body = await created.json()
    assert created.status == 201 and body["user"]["username"] == "nia" and len(body["one_time_password"]) >= 12
    assert "password_hash" not in body["user"]
    nia = body["user"]["id"]

    disabled = await admin_client.post(f"/staff/api/users/{nia}/disable", headers=headers)
    assert disabled.status == 200 and (await disabled.json())["user"]["disabled"] is True
    enabled = await admin_client.post(f"/staff/api/users/{nia}/enable", headers=headers)
    assert (await enabled.json())["user"]["disabled"] is False
    role = await admin_client.post(f"/staff/api/users/{nia}/role", json={"role": "admin"}, headers=headers)
    assert (await role.json())["user"]["role"] == "admin"
    reset = await admin_client.post(f"/staff/api/users/{nia}/reset-password", headers=headers)
    assert (await reset.json())["user"]["must_change_password"] is True

    listing = await (await admin_client.get("/staff/api/users")).json()
    assert {user["username"] for user in listing["users"]} == {"ada", "nia"}
    bad_role = await admin_client.post(f"/staff/api/users/{nia}/role", json={"role": "owner"}, headers=headers)
    missing = await admin_client.post("/staff/api/users/999/disable", headers=headers)
    duplicate = await admin_client.post("/staff/api/users", json={"username": "nia"}, headers=headers)
    assert (bad_role.status, missing.status, duplicate.status) == (400, 404, 400)
    kinds = [event.kind for event in await audit(staff_db) if event.actor == "ada"]
    assert kinds == [AuditKind.staff_user_created, AuditKind.staff_user_disabled, AuditKind.staff_user_enabled,
                     AuditKind.staff_role_changed, AuditKind.staff_password_reset]
