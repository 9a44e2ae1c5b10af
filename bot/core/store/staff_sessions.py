"""Dashboard sessions in the store: started at sign-in, touched on activity, ended at sign-out.

The browser keeps a random key (32 bytes) in a cookie; the store keeps its SHA-256,
so a copy of the database does not sign anyone in. Each session has an idle deadline
(last activity plus ``STAFF_IDLE_MINUTES``, never past the absolute lifetime), checked
here on every request rather than trusted to the cookie, so a shared clinic computer
left open signs out on time on every web replica. The aiohttp-session storage that
uses these queries is :mod:`bot.dashboard.web.session_storage`.

A reception display account (:data:`UNATTENDED_ROLES`: a trusted screen at the front desk that
shows the queue without patient text) is the exception: its session has no idle deadline
(``idle_until`` is its expiry, ``STAFF_RECEPTION_SESSION_DAYS`` after sign-in), and its
requests, the display's live refreshes included, keep recording ``last_seen_at``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.store.models import StaffRole, StaffSession, StaffUser

#: Activity closer together than this does not rewrite the row (one write per half minute at most).
TOUCH_GRANULARITY = timedelta(seconds=30)
#: Roles whose sessions are never signed out for being idle, only at their (long) absolute expiry.
UNATTENDED_ROLES = frozenset({StaffRole.reception.value})


def is_unattended(role: object) -> bool:
    """Whether sessions of ``role`` (a :class:`StaffRole` or its value) have no idle deadline."""
    return getattr(role, "value", role) in UNATTENDED_ROLES


def key_hash(key: str) -> str:
    """The stored form of a session key or API token: SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LiveSession:
    """A live session and the account it belongs to, as one request sees them."""

    id: int
    user_id: int
    username: str
    display_name: str
    role: str
    csrf_token: str
    data: dict[str, Any]
    created_at: datetime
    last_seen_at: datetime
    idle_until: datetime
    expires_at: datetime
    must_change_password: bool


async def start(
    session: AsyncSession, user_id: int, *, now: datetime, idle: timedelta, lifetime: timedelta,
    data: Optional[dict[str, Any]] = None, unattended_lifetime: Optional[timedelta] = None,
) -> tuple[str, StaffSession]:
    """Open a session for ``user_id``; returns the key for the cookie (shown nowhere else) and the row.

    With ``unattended_lifetime``, an account of an unattended role (:data:`UNATTENDED_ROLES`)
    gets that lifetime and no idle deadline instead of ``idle`` and ``lifetime``.
    """
    key = secrets.token_urlsafe(32)
    expires_at = now + lifetime
    idle_until = min(now + idle, expires_at)
    if unattended_lifetime is not None:
        role = (await session.execute(select(StaffUser.role).where(StaffUser.id == user_id))).scalar_one_or_none()
        if is_unattended(role):
            expires_at = idle_until = now + unattended_lifetime
    row = StaffSession(
        key_hash=key_hash(key), user_id=user_id, csrf_token=secrets.token_urlsafe(32), data=data or {},
        created_at=now, last_seen_at=now, idle_until=idle_until, expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return key, row


def _live(now: datetime) -> tuple[Any, ...]:
    return (
        StaffSession.ended_at.is_(None),
        StaffSession.idle_until > now,
        StaffSession.expires_at > now,
        StaffUser.disabled_at.is_(None),
    )


async def find_live(session: AsyncSession, key: str, now: datetime) -> Optional[LiveSession]:
    """The live session whose cookie key is ``key``, with its (enabled) account; ``None`` otherwise."""
    row = (
        await session.execute(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffSession.key_hash == key_hash(key), *_live(now))
        )
    ).first()
    if row is None:
        return None
    record, user = row
    return LiveSession(
        id=record.id, user_id=user.id, username=user.username, display_name=user.display_name,
        role=user.role.value, csrf_token=record.csrf_token, data=dict(record.data or {}),
        created_at=record.created_at, last_seen_at=record.last_seen_at, idle_until=record.idle_until,
        expires_at=record.expires_at, must_change_password=bool(user.must_change_password),
    )


async def touch(session: AsyncSession, live: LiveSession, *, now: datetime, idle: timedelta) -> bool:
    """Record activity: the idle deadline moves to ``now + idle`` (never past the absolute expiry;
    for an unattended role's session it is the expiry).

    Returns whether the row was written (activity within :data:`TOUCH_GRANULARITY` of the
    last recorded one is not).
    """
    if now - live.last_seen_at < TOUCH_GRANULARITY:
        return False
    idle_until = live.expires_at if is_unattended(live.role) else min(now + idle, live.expires_at)
    await session.execute(
        update(StaffSession)
        .where(StaffSession.id == live.id, StaffSession.ended_at.is_(None))
        .values(last_seen_at=now, idle_until=idle_until)
    )
    return True


async def save_data(session: AsyncSession, session_id: int, data: dict[str, Any]) -> None:
    """Replace the session's free-form data (flash messages and the like; nothing secret)."""
    await session.execute(update(StaffSession).where(StaffSession.id == session_id).values(data=data))


async def end(session: AsyncSession, key: str, now: datetime) -> None:
    """End the session whose cookie key is ``key`` (sign-out, or rotation at sign-in)."""
    await session.execute(
        update(StaffSession)
        .where(StaffSession.key_hash == key_hash(key), StaffSession.ended_at.is_(None))
        .values(ended_at=now)
    )


async def end_all_for_user(session: AsyncSession, user_id: int, now: datetime) -> int:
    """End every open session of an account (disabled, or its password was reset); returns how many."""
    result = await session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(result.rowcount or 0)


async def any_live(session: AsyncSession, now: datetime) -> bool:
    """Whether at least one enabled account has a live session."""
    found = await session.execute(
        select(StaffSession.id).join(StaffUser, StaffUser.id == StaffSession.user_id).where(*_live(now)).limit(1)
    )
    return found.first() is not None


async def is_live(session: AsyncSession, session_id: int, now: datetime) -> bool:
    """Whether the session ``session_id`` is still live (for long requests such as an event stream)."""
    found = await session.execute(
        select(StaffSession.id)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.id == session_id, *_live(now))
    )
    return found.first() is not None
