"""API tokens for ``Authorization: Bearer``: named, owned by an account, revocable, stored hashed.

A token is shown once when issued; the store keeps only its SHA-256 (the token is
32 random bytes, so a plain hash is enough). A request made with a token has the
owner's current role. Tokens are revoked when the owner's password is reset or
changed, and when the account is disabled or enabled (:mod:`bot.dashboard.staff.accounts`), so
re-enabling an account brings none back; and no token works while the owner has a
password change pending (after a reset, or on a first admin's first sign-in).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import clock
from bot.core.store.models import ApiToken, AuditKind, StaffUser
from bot.core.store.staff_sessions import key_hash
from bot.dashboard.staff import accounts

PREFIX = "dnst_"
#: ``last_used_at`` is rewritten at most this often per token.
USE_GRANULARITY = timedelta(seconds=60)


def new_token() -> str:
    """A fresh token: a recognisable prefix (for secret scanners) and 32 random bytes."""
    return PREFIX + secrets.token_urlsafe(32)


async def issue(session: AsyncSession, user: StaffUser, name: str, *, actor: str) -> tuple[str, ApiToken]:
    """Issue a token named ``name`` for ``user``; returns the token (shown once) and its row."""
    name = " ".join((name or "").split())[:100]
    if not name:
        raise accounts.AccountError("Give the token a name that says what uses it.")
    if user.disabled_at is not None:
        raise accounts.AccountError("This account is disabled; enable it before issuing a token.")
    if user.must_change_password:
        # Changing the password revokes every token, so one issued now would die at the change.
        raise accounts.AccountError(
            "This account must choose its own password first (by signing in on the dashboard); then issue the token."
        )
    token = new_token()
    row = ApiToken(user_id=user.id, name=name, token_hash=key_hash(token), created_at=clock.now())
    session.add(row)
    await session.flush()
    accounts.audit(session, AuditKind.api_token_issued, actor, user, token_id=row.id, name=name)
    return token, row


async def revoke(session: AsyncSession, token_id: int, *, actor: str) -> ApiToken:
    """Revoke the token ``token_id``; :class:`AccountError` if there is none."""
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise accounts.AccountError(f"There is no API token with id {token_id}.")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        owner = await session.get(StaffUser, row.user_id)
        await session.flush()
        accounts.audit(session, AuditKind.api_token_revoked, actor, owner, token_id=row.id, name=row.name)
    return row


async def list_tokens(session: AsyncSession, user_id: Optional[int] = None) -> list[ApiToken]:
    """Tokens (of one account, or all), newest first."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list((await session.execute(query)).scalars())


async def authenticate(session: AsyncSession, token: str, now: datetime) -> Optional[StaffUser]:
    """The enabled owner of the unrevoked token ``token``, or ``None``; records the use."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    found = (
        await session.execute(
            select(ApiToken, StaffUser)
            .join(StaffUser, StaffUser.id == ApiToken.user_id)
            .where(
                ApiToken.token_hash == key_hash(token), ApiToken.revoked_at.is_(None),
                StaffUser.disabled_at.is_(None), StaffUser.must_change_password.is_(False),
            )
        )
    ).first()
    if found is None:
        return None
    row, user = found
    if row.last_used_at is None or now - row.last_used_at >= USE_GRANULARITY:
        await session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return user
