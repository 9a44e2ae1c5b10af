"""Staff accounts, sign-in throttling, sessions, tokens and presence on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import select, text

from bot.core.store import presence
from bot.core.store import staff_sessions
from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import alembic_config
from bot.core.store.models import StaffRole, StaffUser, utcnow
from bot.dashboard.staff import accounts, tokens
from bot.dashboard.staff.signin import Limits, Outcome, authenticate
from tests.support.postgres import server, sessions  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.postgres

PASSWORD = "a perfectly long password"
LIMITS = Limits(max_failures=5, lockout=timedelta(minutes=15), address_max_failures=100,
                address_window=timedelta(minutes=15), secret="s")
IDLE, LIFETIME = timedelta(minutes=15), timedelta(hours=12)


async def create(sessions, username="rita", role=StaffRole.staff) -> StaffUser:
    async with sessions() as session, session.begin():
        return await accounts.create_user(session, username, PASSWORD, role=role, actor="ada")


async def test_the_staff_tables_exist_and_the_migration_goes_down_and_up_again(server, sessions):
    async with sessions() as session:
        tables = set((await session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))).scalars())
    assert {"staff_users", "staff_sessions", "api_tokens", "staff_login_failures"} <= tables
    await create(sessions)
    config = alembic_config(server.url)
    command.downgrade(config, "0002")
    command.upgrade(config, "head")
    async with sessions() as session:
        [user] = (await session.execute(select(StaffUser))).scalars().all()
    assert user.username == "rita" and user.disabled_at is None and user.role == StaffRole.staff


async def test_accounts_and_sign_in_on_postgres(sessions):
    await create(sessions)
    now = utcnow()

    async def attempt(password, at=now):
        async with sessions() as session, session.begin():
            return (await authenticate(session, "rita", password, address="10.0.0.9", now=at, limits=LIMITS)).outcome

    assert await attempt(PASSWORD) is Outcome.ok
    for _ in range(5):
        assert await attempt("wrong wrong wrong") is Outcome.invalid
    assert await attempt(PASSWORD) is Outcome.locked
    assert await attempt(PASSWORD, now + timedelta(minutes=16)) is Outcome.ok


async def test_concurrent_failures_from_several_replicas_are_all_counted(server, sessions):
    """Six engines stand in for six web replicas; the account's counter is updated atomically."""
    await create(sessions)
    engines = [create_engine(server.url) for _ in range(6)]
    limits = Limits(max_failures=100, address_max_failures=1000, secret="s")

    async def fail(engine):
        async with session_factory(engine)() as session, session.begin():
            await authenticate(session, "rita", "wrong wrong wrong", address="10.0.0.8", now=utcnow(), limits=limits)

    try:
        await asyncio.gather(*(fail(engine) for engine in engines * 2))
    finally:
        for engine in engines:
            await engine.dispose()
    async with sessions() as session:
        assert (await accounts.get_user(session, "rita")).failed_logins == 12


async def test_sessions_presence_and_disabling_on_postgres(sessions):
    user = await create(sessions)
    now = utcnow()
    async with sessions() as session, session.begin():
        key, _ = await staff_sessions.start(session, user.id, now=now, idle=IDLE, lifetime=LIFETIME)
    async with sessions() as session, session.begin():
        live = await staff_sessions.find_live(session, key, now + timedelta(minutes=10))
        assert live is not None and live.username == "rita"
        assert await staff_sessions.touch(session, live, now=now + timedelta(minutes=10), idle=IDLE)
    assert await presence.staff_signed_in(sessions, now + timedelta(minutes=20))
    assert not await presence.staff_signed_in(sessions, now + timedelta(minutes=26))
    async with sessions() as session, session.begin():
        await accounts.disable_user(session, await session.get(StaffUser, user.id), actor="ada")
    async with sessions() as session:
        assert await staff_sessions.find_live(session, key, now) is None
    assert not await presence.staff_signed_in(sessions, now)


async def test_tokens_on_postgres(sessions):
    user = await create(sessions)
    async with sessions() as session, session.begin():
        token, row = await tokens.issue(session, await session.get(StaffUser, user.id), "export", actor="ada")
    async with sessions() as session, session.begin():
        assert (await tokens.authenticate(session, token, utcnow())).id == user.id
        await tokens.revoke(session, row.id, actor="ada")
    async with sessions() as session, session.begin():
        assert await tokens.authenticate(session, token, utcnow()) is None
