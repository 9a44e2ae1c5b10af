"""Signing in and out of the dashboard: the form, the session cookie, roles, the JSON identity."""

from __future__ import annotations

from sqlalchemy import select

from bot.store.models import StaffSession
from tests.web.conftest import PASSWORD, sign_in


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
