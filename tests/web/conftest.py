"""Fixtures for the staff dashboard: an app on a migrated SQLite store, and signed-in clients.

- ``staff_app``: ``create_app`` on the test's own store (every helper's routes included).
- ``staff_server``: that app served once; every client below talks to the same server.
- ``make_user(username, role="staff", password=..., display_name=...)``: an account.
- ``staff_client`` / ``admin_client``: signed in through the real form, with the session's
  CSRF token as ``client.csrf``; ``anon_client``: nobody signed in.
- ``sign_in(client, username, password)``: the form round trip, returns the POST's answer.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, Optional

import pytest
from aiohttp.test_utils import TestClient

from bot.core.settings import Settings
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import StaffRole, StaffUser
from bot.dashboard.staff import accounts
from bot.dashboard.web.app import create_app

PASSWORD = "correct horse battery staple"
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def staff_settings(tmp_path, db_url) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=db_url,
        public_web_url="http://127.0.0.1:8000",
        session_secret="test-session-secret",
        notify_interval_seconds=3600,  # the notifier's first pass runs at start, then sleeps
    )


@pytest.fixture
def staff_app(staff_settings):
    return create_app(staff_settings)


@pytest.fixture
async def staff_server(aiohttp_server, staff_app):
    return await aiohttp_server(staff_app)


@pytest.fixture
async def staff_db(db_url):
    """A session factory on the same store as the app (for arranging and checking rows)."""
    engine = create_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


MakeUser = Callable[..., Awaitable[StaffUser]]


@pytest.fixture
def make_user(staff_db) -> MakeUser:
    async def make(
        username: str, role: str = "staff", password: str = PASSWORD, display_name: Optional[str] = None,
    ) -> StaffUser:
        async with staff_db() as session, session.begin():
            return await accounts.create_user(
                session, username, password, role=StaffRole(role),
                display_name=display_name or username.title(), actor="test",
            )

    return make


async def sign_in(client: TestClient, username: str, password: str = PASSWORD, **fields: Any):
    """Fetch the sign-in form, then post it; returns the POST's (unfollowed) answer."""
    form = await client.get("/staff/login", allow_redirects=False)
    match = FORM_TOKEN.search(await form.text())
    token = match.group(1) if match else ""
    return await client.post(
        "/staff/login", data={"csrf_token": token, "username": username, "password": password, **fields},
        allow_redirects=False,
    )


async def signed_in_client(aiohttp_client, server, username: str, password: str = PASSWORD) -> TestClient:
    client = await aiohttp_client(server)
    reply = await sign_in(client, username, password)
    assert reply.status == 303, await reply.text()
    me = await client.get("/staff/api/me")
    assert me.status == 200
    client.csrf = (await me.json())["csrf_token"]
    return client


@pytest.fixture
async def staff_client(aiohttp_client, staff_server, make_user) -> TestClient:
    await make_user("sam", role="staff", display_name="Sam Staff")
    return await signed_in_client(aiohttp_client, staff_server, "sam")


@pytest.fixture
async def admin_client(aiohttp_client, staff_server, make_user) -> TestClient:
    await make_user("ada", role="admin", display_name="Ada Admin")
    return await signed_in_client(aiohttp_client, staff_server, "ada")


@pytest.fixture
async def anon_client(aiohttp_client, staff_server) -> TestClient:
    return await aiohttp_client(staff_server)
