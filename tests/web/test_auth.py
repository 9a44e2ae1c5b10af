"""Signing in and out of the dashboard: the form, the session cookie, roles, the JSON identity."""

from __future__ import annotations

import dataclasses
import re

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from bot.core.store.models import ApiToken, AuditEvent, AuditKind, StaffSession, StaffUser
from bot.dashboard.staff import accounts, tokens
from bot.dashboard.web.app import create_app
from bot.dashboard.web.auth import require_role
from tests.web.conftest import FORM_TOKEN, PASSWORD, sign_in

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


async def test_anonymous_dashboard_pages_go_to_the_sign_in_page(anon_client):
    reply = await anon_client.get("/staff/", allow_redirects=False)

    assert reply.status == 303
    assert reply.headers["Location"] == "/staff/login?next=/staff/"


async def test_anonymous_api_requests_get_401_json(anon_client):
    reply = await anon_client.get("/staff/api/me")

    assert reply.status == 401
    assert (await reply.json())["error"] == "unauthenticated"


async def test_signing_in_with_the_right_password_opens_a_session(anon_client, make_user):
    await make_user("rita", display_name="Rita Reception")

    reply = await sign_in(anon_client, "Rita", PASSWORD)

    assert reply.status == 303 and reply.headers["Location"] == "/staff/"
    me = await anon_client.get("/staff/api/me")
    body = await me.json()
    assert body["username"] == "rita" and body["display_name"] == "Rita Reception"
    assert body["role"] == "staff" and body["via"] == "session" and body["csrf_token"]


async def test_the_session_cookie_is_httponly_strict_and_scoped_to_the_dashboard(anon_client, make_user):
    await make_user("rita")

    reply = await sign_in(anon_client, "rita")

    cookie = reply.cookies["staff_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/staff"
    assert not cookie["secure"]  # PUBLIC_WEB_URL is http in these tests
    assert not cookie["max-age"] and not cookie["expires"]


async def test_the_cookie_holds_a_random_key_and_the_store_only_its_hash(anon_client, make_user, staff_db):
    await make_user("rita")
    reply = await sign_in(anon_client, "rita")
    key = reply.cookies["staff_session"].value

    async with staff_db() as session:
        rows = (await session.execute(select(StaffSession))).scalars().all()

    assert len(rows) == 1
    assert len(key) >= 40 and key not in rows[0].key_hash
    assert rows[0].key_hash == __import__("hashlib").sha256(key.encode()).hexdigest()


async def test_signing_out_ends_the_session_on_the_server(staff_client, staff_db):
    old_cookie = staff_client.session.cookie_jar.filter_cookies(staff_client.make_url("/staff/"))["staff_session"].value

    reply = await staff_client.post("/staff/logout", data={"csrf_token": staff_client.csrf}, allow_redirects=False)

    assert reply.status == 303 and reply.headers["Location"] == "/staff/login?signed_out=1"
    assert (await staff_client.get("/staff/api/me")).status == 401
    # The old cookie, replayed, no longer signs anyone in.
    replay = await staff_client.get("/staff/api/me", cookies={"staff_session": old_cookie})
    assert replay.status == 401
    async with staff_db() as session:
        [row] = (await session.execute(select(StaffSession))).scalars().all()
    assert row.ended_at is not None


# Wrong passwords, lockout, throttling


def later(monkeypatch, **delta) -> None:
    """Move the staff modules' clock forward."""
    from datetime import timedelta

    from bot.core import clock

    moved = clock.now() + timedelta(**delta)
    monkeypatch.setattr(clock, "now", lambda: moved)


async def test_a_wrong_password_is_refused_with_a_message_that_does_not_say_which_part_was_wrong(anon_client, make_user):
    await make_user("rita")

    wrong = await sign_in(anon_client, "rita", "not the password at all")
    unknown = await sign_in(anon_client, "nobody-here", "not the password at all")

    assert wrong.status == unknown.status == 401
    assert "staff_session" not in wrong.cookies
    wrong_text, unknown_text = await wrong.text(), await unknown.text()
    assert "The username or password is not right" in wrong_text
    message = lambda text: text.split('id="signin-error">', 1)[1].split("<", 1)[0]  # noqa: E731
    assert message(wrong_text) == message(unknown_text)
    assert (await anon_client.get("/staff/api/me")).status == 401


async def test_repeated_failures_lock_the_account_even_for_the_right_password(anon_client, make_user, staff_db):
    await make_user("rita")
    for _ in range(5):
        assert (await sign_in(anon_client, "rita", "wrong password here")).status == 401

    locked = await sign_in(anon_client, "rita", PASSWORD)

    assert locked.status == 401
    async with staff_db() as session:
        user = await accounts.get_user(session, "rita")
        kinds = (await session.execute(select(AuditEvent.kind))).scalars().all()
    assert user.failed_logins == 5 and user.locked_until is not None
    assert AuditKind.staff_account_locked in kinds


async def test_the_lockout_ends_after_the_lockout_time(anon_client, make_user, monkeypatch):
    await make_user("rita")
    for _ in range(5):
        await sign_in(anon_client, "rita", "wrong password here")

    later(monkeypatch, minutes=16)

    assert (await sign_in(anon_client, "rita", PASSWORD)).status == 303


async def test_after_a_lockout_expires_one_failure_does_not_lock_again(anon_client, make_user, monkeypatch):
    await make_user("rita")
    for _ in range(5):
        await sign_in(anon_client, "rita", "wrong password here")
    later(monkeypatch, minutes=16)

    await sign_in(anon_client, "rita", "wrong password here")

    assert (await sign_in(anon_client, "rita", PASSWORD)).status == 303


async def test_a_success_resets_the_failure_count(anon_client, make_user, staff_db):
    await make_user("rita")
    for _ in range(4):
        await sign_in(anon_client, "rita", "wrong password here")
    assert (await sign_in(anon_client, "rita", PASSWORD)).status == 303
    async with staff_db() as session:
        assert (await accounts.get_user(session, "rita")).failed_logins == 0


async def test_many_failures_from_one_address_pause_sign_in_from_it_for_every_username(
    aiohttp_client, staff_server, make_user, monkeypatch,
):
    await make_user("rita")
    client = await aiohttp_client(staff_server)
    for number in range(20):  # LOGIN_ADDRESS_MAX_FAILURES, spread over usernames that do not exist
        await sign_in(client, f"guess{number}", "wrong password here")

    paused = await sign_in(client, "rita", PASSWORD)

    assert paused.status == 429
    assert "Too many failed sign-ins from this computer" in await paused.text()
    later(monkeypatch, minutes=16)
    assert (await sign_in(client, "rita", PASSWORD)).status == 303


async def test_the_failure_counts_are_in_the_store_so_every_replica_sees_them(
    aiohttp_client, aiohttp_server, staff_settings, make_user,
):
    """Two app instances on one database stand in for two web replicas behind a load balancer."""
    await make_user("rita")
    first = await aiohttp_client(await aiohttp_server(create_app(staff_settings)))
    second = await aiohttp_client(await aiohttp_server(create_app(staff_settings)))
    for client in (first, second, first, second, first):
        await sign_in(client, "rita", "wrong password here")

    assert (await sign_in(second, "rita", PASSWORD)).status == 401


# Disabled accounts


async def test_a_disabled_account_cannot_sign_in(anon_client, make_user, staff_db):
    user = await make_user("rita")
    async with staff_db() as session, session.begin():
        await accounts.disable_user(session, await session.get(StaffUser, user.id), actor="test")

    reply = await sign_in(anon_client, "rita", PASSWORD)

    assert reply.status == 401
    assert "The username or password is not right" in await reply.text()


async def test_disabling_an_account_ends_its_live_sessions(staff_client, staff_db):
    assert (await staff_client.get("/staff/api/me")).status == 200
    async with staff_db() as session, session.begin():
        await accounts.disable_user(session, await accounts.get_user(session, "sam"), actor="test")

    assert (await staff_client.get("/staff/api/me")).status == 401


# Idle timeout and lifetime


async def test_a_session_unused_for_the_idle_time_is_over(staff_client, monkeypatch):
    later(monkeypatch, minutes=16)

    assert (await staff_client.get("/staff/api/me")).status == 401
    page = await staff_client.get("/staff/account/password", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/staff/login")


async def test_activity_keeps_the_session_alive_past_the_idle_time(staff_client, monkeypatch):
    later(monkeypatch, minutes=10)
    assert (await staff_client.get("/staff/api/me")).status == 200
    later(monkeypatch, minutes=10)  # 20 minutes after sign-in, 10 after the last activity

    assert (await staff_client.get("/staff/api/me")).status == 200


async def test_an_event_stream_request_does_not_count_as_activity(staff_client, monkeypatch):
    later(monkeypatch, minutes=10)
    stream = await staff_client.get("/staff/api/me", headers={"Accept": "text/event-stream"})
    assert stream.status == 200  # it is still allowed while the session lives
    later(monkeypatch, minutes=10)  # 20 minutes after the last real activity

    assert (await staff_client.get("/staff/api/me")).status == 401


async def test_a_session_ends_after_its_absolute_lifetime_even_when_in_use(staff_client, monkeypatch):
    for _ in range(51):  # a request every 14 minutes for 11 h 54 min
        later(monkeypatch, minutes=14)
        assert (await staff_client.get("/staff/api/me")).status == 200
    later(monkeypatch, minutes=14)

    assert (await staff_client.get("/staff/api/me")).status == 401


async def test_the_idle_timeout_comes_from_the_settings(aiohttp_client, aiohttp_server, staff_settings, make_user, monkeypatch):
    settings = dataclasses.replace(staff_settings, staff_idle_minutes=5)
    await make_user("rita")
    client = await aiohttp_client(await aiohttp_server(create_app(settings)))
    assert (await sign_in(client, "rita")).status == 303

    later(monkeypatch, minutes=6)

    assert (await client.get("/staff/api/me")).status == 401


# Session rotation and cookie flags


async def test_signing_in_gives_a_new_session_and_ends_the_previous_one(staff_client, staff_db):
    jar = staff_client.session.cookie_jar
    before = jar.filter_cookies(staff_client.make_url("/staff/"))["staff_session"].value

    # The form page sends a signed-in browser on to the dashboard; hide the session to get a form.
    form = await staff_client.get("/staff/login", cookies={"staff_session": "none"}, allow_redirects=False)
    token = FORM_TOKEN.search(await form.text()).group(1)
    reply = await staff_client.post(
        "/staff/login", data={"csrf_token": token, "username": "sam", "password": PASSWORD}, allow_redirects=False,
    )

    assert reply.status == 303
    after = reply.cookies["staff_session"].value
    assert after != before
    assert (await staff_client.get("/staff/api/me", cookies={"staff_session": before})).status == 401
    me = await staff_client.get("/staff/api/me", cookies={"staff_session": after})
    assert me.status == 200 and (await me.json())["csrf_token"] != staff_client.csrf


async def test_a_session_cookie_chosen_by_someone_else_is_not_kept(anon_client, make_user):
    """Session fixation: a key planted before sign-in is not the key after it."""
    await make_user("rita")
    anon_client.session.cookie_jar.update_cookies({"staff_session": "planted-by-an-attacker"})

    reply = await sign_in(anon_client, "rita")

    assert reply.cookies["staff_session"].value != "planted-by-an-attacker"


async def test_the_cookies_are_secure_when_the_dashboard_is_served_over_https(
    aiohttp_client, aiohttp_server, staff_settings, make_user,
):
    settings = dataclasses.replace(staff_settings, public_web_url="https://clinic.example.org")
    await make_user("rita")
    client = await aiohttp_client(await aiohttp_server(create_app(settings)))
    form = await client.get("/staff/login")
    assert form.cookies["staff_login"]["secure"]
    token = FORM_TOKEN.search(await form.text()).group(1)

    reply = await client.post(
        "/staff/login", data={"csrf_token": token, "username": "rita", "password": PASSWORD},
        cookies={"staff_login": token}, allow_redirects=False,
    )

    assert reply.status == 303
    assert reply.cookies["staff_session"]["secure"]


async def test_a_sign_in_post_without_the_form_token_is_refused(anon_client, make_user):
    """Login CSRF: another site cannot sign a browser in to an account of its choosing."""
    await make_user("rita")

    reply = await anon_client.post("/staff/login", data={"username": "rita", "password": PASSWORD}, allow_redirects=False)

    assert reply.status == 403
    assert "staff_session" not in reply.cookies


async def test_after_sign_in_the_browser_returns_to_the_page_it_asked_for(anon_client, make_user):
    await make_user("rita")
    first = await anon_client.get("/staff/escalations/6f1c1f7e-2a4b-4c8e-9d3f-0a1b2c3d4e5f", allow_redirects=False)
    next_path = first.headers["Location"].split("next=", 1)[1]

    reply = await sign_in(anon_client, "rita", next=next_path)

    assert reply.headers["Location"] == "/staff/escalations/6f1c1f7e-2a4b-4c8e-9d3f-0a1b2c3d4e5f"


async def test_sign_in_never_sends_the_browser_off_the_dashboard(anon_client, make_user):
    await make_user("rita")
    for target in ("https://evil.example/", "//evil.example/staff/", "/staff/../static/x", "/staff/?q=1"):
        reply = await sign_in(anon_client, "rita", next=target)
        assert reply.headers["Location"] == "/staff/", target
        anon_client.session.cookie_jar.clear()


async def test_a_password_hash_made_with_weaker_parameters_is_upgraded_at_sign_in(anon_client, make_user, staff_db):
    user = await make_user("rita")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with staff_db() as session, session.begin():
        (await session.get(StaffUser, user.id)).password_hash = weak

    assert (await sign_in(anon_client, "rita")).status == 303

    async with staff_db() as session:
        stored = (await session.get(StaffUser, user.id)).password_hash
    assert stored != weak and not accounts.needs_rehash(stored)


# API tokens


async def issue_token(staff_db, username: str, name: str = "reporting") -> tuple[str, int]:
    async with staff_db() as session, session.begin():
        token, row = await tokens.issue(session, await accounts.get_user(session, username), name, actor="test")
        return token, row.id


async def test_an_api_token_authenticates_with_the_owners_role(anon_client, make_user, staff_db):
    await make_user("ada", role="admin")
    token, token_id = await issue_token(staff_db, "ada")

    reply = await anon_client.get("/staff/api/me", headers={"Authorization": f"Bearer {token}"})

    body = await reply.json()
    assert reply.status == 200 and body["username"] == "ada" and body["role"] == "admin" and body["via"] == "token"
    async with staff_db() as session:
        assert (await session.get(ApiToken, token_id)).last_used_at is not None


async def test_the_store_keeps_only_a_hash_of_an_api_token(make_user, staff_db):
    await make_user("ada")
    token, token_id = await issue_token(staff_db, "ada")
    async with staff_db() as session:
        row = await session.get(ApiToken, token_id)
    assert token not in row.token_hash and len(row.token_hash) == 64


async def test_a_revoked_token_no_longer_authenticates(anon_client, make_user, staff_db):
    await make_user("ada")
    token, token_id = await issue_token(staff_db, "ada")
    async with staff_db() as session, session.begin():
        await tokens.revoke(session, token_id, actor="test")

    reply = await anon_client.get("/staff/api/me", headers={"Authorization": f"Bearer {token}"})

    assert reply.status == 401


async def test_a_disabled_owners_token_no_longer_authenticates(anon_client, make_user, staff_db):
    await make_user("ada")
    await make_user("boss", role="admin")
    token, _ = await issue_token(staff_db, "ada")
    async with staff_db() as session, session.begin():
        await accounts.disable_user(session, await accounts.get_user(session, "ada"), actor="boss")

    assert (await anon_client.get("/staff/api/me", headers={"Authorization": f"Bearer {token}"})).status == 401


async def test_a_bad_token_is_401_even_for_a_page_and_even_with_a_good_session(staff_client):
    for header in ("Bearer dnst_madeup", "Bearer ", "Basic c2FtOnB3", "dnst_madeup"):
        reply = await staff_client.get("/staff/account/password", headers={"Authorization": header}, allow_redirects=False)
        assert reply.status == 401, header


async def test_token_requests_need_no_csrf_token(anon_client, make_user, staff_db):
    await make_user("ada", role="admin")
    token, _ = await issue_token(staff_db, "ada")

    reply = await anon_client.post(
        "/staff/api/users", json={"username": "newbie", "display_name": "New Bie"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert reply.status == 201


# Roles


async def test_staff_cannot_reach_admin_pages_or_api(staff_client):
    page = await staff_client.get("/staff/admin/users")
    api = await staff_client.get("/staff/api/users")

    assert page.status == 403 and api.status == 403
    assert (await api.json())["error"] == "forbidden"


async def test_admins_reach_admin_pages(admin_client):
    assert (await admin_client.get("/staff/admin/users")).status == 200
    assert (await admin_client.get("/staff/api/users")).status == 200


def test_require_role_refuses_an_unknown_role():
    with pytest.raises(ValueError):
        require_role("superuser")


# Choosing a new password


async def test_an_account_with_a_one_time_password_must_choose_its_own_first(anon_client, make_user, staff_db):
    user = await make_user("rita")
    async with staff_db() as session, session.begin():
        await accounts.set_password(session, await session.get(StaffUser, user.id), "temporary-pass-123", actor="ada", must_change=True)

    reply = await sign_in(anon_client, "rita", "temporary-pass-123")
    assert reply.headers["Location"] == "/staff/account/password"
    blocked = await anon_client.get("/staff/", allow_redirects=False)
    assert blocked.status == 303 and blocked.headers["Location"] == "/staff/account/password"
    assert (await anon_client.get("/staff/api/me")).status == 403

    token = CSRF_META.search(await (await anon_client.get("/staff/account/password")).text()).group(1)
    changed = await anon_client.post("/staff/account/password", data={
        "csrf_token": token, "current_password": "temporary-pass-123",
        "new_password": "my own long password", "new_password_again": "my own long password",
    }, allow_redirects=False)

    assert changed.status == 303 and changed.headers["Location"] == "/staff/"
    assert (await anon_client.get("/staff/api/me")).status == 200
    anon_client.session.cookie_jar.clear()
    assert (await sign_in(anon_client, "rita", "my own long password")).status == 303


async def test_a_new_password_must_meet_the_policy(staff_client):
    reply = await staff_client.post("/staff/account/password", data={
        "csrf_token": staff_client.csrf, "current_password": PASSWORD,
        "new_password": "sam", "new_password_again": "sam",
    })

    assert reply.status == 400
    assert "at least 12 characters" in await reply.text()


async def test_wrong_current_passwords_lock_the_account_and_sign_the_session_out(staff_client, staff_db):
    """A borrowed session cannot guess its way to a new password: the sign-in lockout applies."""
    async def change(current: str):
        return await staff_client.post("/staff/account/password", data={
            "csrf_token": staff_client.csrf, "current_password": current,
            "new_password": "a brand new long password", "new_password_again": "a brand new long password",
        }, allow_redirects=False)

    for _ in range(4):
        wrong = await change("not the password at all")
        assert wrong.status == 400
        assert "wrong tries in a row the account is locked" in await wrong.text()

    locked = await change("still not the password")

    assert locked.status == 303 and locked.headers["Location"] == "/staff/login?locked=1"
    assert (await staff_client.get("/staff/api/me")).status == 401
    notice = await (await staff_client.get("/staff/login?locked=1")).text()
    assert "signed out everywhere" in notice
    async with staff_db() as session:
        user = (await session.execute(select(StaffUser).where(StaffUser.username == "sam"))).scalar_one()
    assert user.locked_until is not None
    assert (await sign_in(staff_client, "sam", PASSWORD)).status == 401  # locked even with the right password


async def test_the_right_current_password_after_a_wrong_one_still_changes_it(staff_client):
    await staff_client.post("/staff/account/password", data={
        "csrf_token": staff_client.csrf, "current_password": "wrong",
        "new_password": "a brand new long password", "new_password_again": "a brand new long password",
    })

    changed = await staff_client.post("/staff/account/password", data={
        "csrf_token": staff_client.csrf, "current_password": PASSWORD,
        "new_password": "a brand new long password", "new_password_again": "a brand new long password",
    }, allow_redirects=False)

    assert changed.status == 303 and changed.headers["Location"] == "/staff/"
