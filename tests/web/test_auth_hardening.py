"""Issue 20: a signed sign-in form token, usual addresses, the strength check on the form, tokens and resets."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.core import clock
from bot.core.store.models import StaffSession, StaffUser
from bot.dashboard.staff import accounts, signin, tokens
from bot.dashboard.web.login import LOGIN_COOKIE, LOGIN_COOKIE_SECONDS, login_token, login_token_valid
from tests.web.conftest import FORM_TOKEN, PASSWORD, sign_in

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SECRET = "test-session-secret"


async def _post_login(client, token: str, cookie: str):
    client.session.cookie_jar.update_cookies({LOGIN_COOKIE: cookie})
    return await client.post("/staff/login", data={"csrf_token": token, "username": "rita", "password": PASSWORD},
                             allow_redirects=False)


def test_a_form_token_is_valid_only_with_its_signature_and_within_the_hour():
    now = int(clock.now().timestamp())
    token = login_token(SECRET, now)

    assert login_token_valid(token, SECRET, now + 60)
    assert not login_token_valid(token, "another secret", now)
    assert not login_token_valid(token, SECRET, now + LOGIN_COOKIE_SECONDS + 1)
    assert not login_token_valid(token[:-1] + ("0" if token[-1] != "0" else "1"), SECRET, now)
    for junk in ("", ".", "..", "a.b.c", "x" * 80):
        assert not login_token_valid(junk, SECRET, now)


async def test_a_matching_but_unsigned_cookie_and_field_pair_is_refused(anon_client, make_user):
    """A sibling site can plant a cookie, but cannot sign one: login CSRF stays closed."""
    await make_user("rita")

    reply = await _post_login(anon_client, "chosen-by-someone-else", "chosen-by-someone-else")

    assert reply.status == 403 and "staff_session" not in reply.cookies


async def test_a_token_signed_with_another_secret_or_too_old_is_refused(anon_client, make_user):
    await make_user("rita")
    now = int(clock.now().timestamp())
    for token in (login_token("not the session secret", now), login_token(SECRET, now - LOGIN_COOKIE_SECONDS - 5)):
        assert (await _post_login(anon_client, token, token)).status == 403


async def test_the_page_s_own_signed_token_signs_in(anon_client, make_user):
    await make_user("rita")
    form = await anon_client.get("/staff/login")
    token = FORM_TOKEN.search(await form.text()).group(1)

    assert login_token_valid(token, SECRET, int(clock.now().timestamp()))
    assert form.cookies[LOGIN_COOKIE].value == token
    assert (await _post_login(anon_client, token, token)).status == 303


async def test_a_sign_in_records_the_keyed_hash_of_its_address_as_a_usual_one(anon_client, make_user, staff_db):
    user = await make_user("rita")

    assert (await sign_in(anon_client, "rita")).status == 303

    async with staff_db() as session:
        [data] = (await session.execute(select(StaffSession.data).where(StaffSession.user_id == user.id))).scalars()
        assert await signin.is_usual_address(session, user.id, signin.address_key("127.0.0.1", SECRET))
    assert data[signin.USUAL_ADDRESS] == signin.address_key("127.0.0.1", SECRET)
    assert "127.0.0.1" not in str(data)


async def test_the_usual_address_signs_in_while_an_outsider_has_locked_the_account(anon_client, make_user, staff_db):
    user = await make_user("rita")
    assert (await sign_in(anon_client, "rita")).status == 303
    anon_client.session.cookie_jar.clear()
    limits = signin.Limits(secret=SECRET)
    async with staff_db() as session, session.begin():
        for _ in range(limits.max_failures):
            await signin.authenticate(session, "rita", "wrong wrong wrong", address="198.51.100.7",
                                      now=clock.now(), limits=limits)
    async with staff_db() as session:
        assert accounts.is_locked(await session.get(StaffUser, user.id))

    assert (await sign_in(anon_client, "rita")).status == 303


async def test_a_guessable_new_password_is_refused_with_a_clear_message(staff_client):
    page = await staff_client.get("/staff/account/password")
    assert "hard to guess" in await page.text()

    reply = await staff_client.post("/staff/account/password", data={
        "csrf_token": staff_client.csrf, "current_password": PASSWORD,
        "new_password": "password1234", "new_password_again": "password1234",
    })

    assert reply.status == 400
    text = await reply.text()
    assert "too easy to guess" in text and "unrelated words" in text


async def _issue(staff_db, username: str) -> str:
    async with staff_db() as session, session.begin():
        token, _ = await tokens.issue(session, await accounts.get_user(session, username), "script", actor="test")
    return token


async def test_an_admin_reset_revokes_the_accounts_api_tokens(admin_client, anon_client, make_user, staff_db):
    user = await make_user("rita")
    token = await _issue(staff_db, "rita")
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await anon_client.get("/staff/api/me", headers=bearer)).status == 200

    reply = await admin_client.post(f"/staff/api/users/{user.id}/reset-password", headers={"X-CSRF-Token": admin_client.csrf})

    assert reply.status == 200 and (await reply.json())["user"]["api_tokens"] == 0
    assert (await anon_client.get("/staff/api/me", headers=bearer)).status == 401


async def test_disabling_then_enabling_brings_no_token_back(admin_client, anon_client, make_user, staff_db):
    user = await make_user("rita")
    token = await _issue(staff_db, "rita")
    csrf = {"X-CSRF-Token": admin_client.csrf}
    assert (await admin_client.post(f"/staff/api/users/{user.id}/disable", headers=csrf)).status == 200
    enabled = await admin_client.post(f"/staff/api/users/{user.id}/enable", headers=csrf)

    assert enabled.status == 200 and (await enabled.json())["user"]["api_tokens"] == 0
    assert (await anon_client.get("/staff/api/me", headers={"Authorization": f"Bearer {token}"})).status == 401


async def test_a_token_is_refused_while_its_owner_must_change_the_password(anon_client, make_user, staff_db):
    user = await make_user("rita")
    token = await _issue(staff_db, "rita")
    async with staff_db() as session, session.begin():
        (await session.get(StaffUser, user.id)).must_change_password = True

    reply = await anon_client.get("/staff/api/cases", headers={"Authorization": f"Bearer {token}"})

    assert reply.status == 401


async def test_behind_a_proxy_failures_count_against_the_forwarded_address_not_the_proxys(
    aiohttp_client, aiohttp_server, staff_settings, make_user, staff_db,
):
    """An outsider guessing through the clinic's proxy must not lock the clinic's computers out."""
    import dataclasses

    from bot.dashboard.web.app import create_app

    settings = dataclasses.replace(staff_settings, web_proxies_count=1)
    user = await make_user("rita")
    client = await aiohttp_client(await aiohttp_server(create_app(settings)))

    async def attempt(forwarded: str, password: str):
        form = await client.get("/staff/login", headers={"X-Forwarded-For": forwarded})
        token = FORM_TOKEN.search(await form.text()).group(1)
        reply = await client.post("/staff/login", data={"csrf_token": token, "username": "rita", "password": password},
                                  headers={"X-Forwarded-For": forwarded}, allow_redirects=False)
        client.session.cookie_jar.clear()
        return reply.status

    assert await attempt("10.0.0.1", PASSWORD) == 303  # the clinic's computer, through the proxy
    for _ in range(5):
        assert await attempt("spoofed, 198.51.100.7", "wrong wrong wrong") == 401
    async with staff_db() as session:
        assert accounts.is_locked(await session.get(StaffUser, user.id))

    assert await attempt("10.0.0.1", PASSWORD) == 303
    assert await attempt("203.0.113.5", PASSWORD) == 401


def test_the_client_address_is_the_one_the_outermost_trusted_proxy_saw():
    from aiohttp.test_utils import make_mocked_request

    from bot.dashboard.web.login import client_address

    request = make_mocked_request("GET", "/", headers={"X-Forwarded-For": "1.1.1.1, 2.2.2.2, 3.3.3.3"})
    assert client_address(request, 1) == "3.3.3.3"
    assert client_address(request, 2) == "2.2.2.2"
    assert client_address(request, 0) == (request.remote or "")
    assert client_address(make_mocked_request("GET", "/"), 1) == (request.remote or "")
