"""Checking a sign-in: password, disabled accounts, lockout per account, throttle per client address.

Both counters live in the store, not in memory, so they hold across web replicas:
the account's ``failed_logins``/``locked_until`` (``LOGIN_MAX_FAILURES`` failures lock
it for ``LOGIN_LOCKOUT_MINUTES``), and one row per failure from a client address
(``LOGIN_ADDRESS_MAX_FAILURES`` within ``LOGIN_ADDRESS_WINDOW_MINUTES`` pause that
address). Addresses are stored as a keyed hash, not as written.

Whatever went wrong, the caller shows one message: it never says whether the
username exists, and an unknown username costs the same password hash as a known one.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings
from bot.staff import accounts
from bot.store.models import AuditKind, LoginFailure, StaffUser

logger = logging.getLogger(__name__)


class Outcome(str, enum.Enum):
    """How a sign-in attempt ended (for the caller and the tests; the user sees one message)."""

    ok = "ok"
    invalid = "invalid"
    locked = "locked"
    disabled = "disabled"
    throttled = "throttled"


@dataclass(frozen=True)
class Attempt:
    """The result of :func:`authenticate`: the account when ``outcome`` is ok."""

    outcome: Outcome
    user: Optional[StaffUser] = None


@dataclass(frozen=True)
class Limits:
    """The thresholds, from the settings."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    address_max_failures: int = 20
    address_window: timedelta = timedelta(minutes=15)
    secret: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(
            max_failures=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            address_max_failures=settings.login_address_max_failures,
            address_window=timedelta(minutes=settings.login_address_window_minutes),
            secret=settings.session_secret,
        )


def address_key(address: str, secret: str) -> str:
    """The stored form of a client address: HMAC-SHA-256 with the session secret."""
    return hmac.new(secret.encode("utf-8"), (address or "unknown").encode("utf-8"), hashlib.sha256).hexdigest()


async def address_failures(session: AsyncSession, key: str, since: datetime) -> int:
    """Failed sign-ins from the address ``key`` since ``since``."""
    found = await session.execute(
        select(func.count()).select_from(LoginFailure).where(LoginFailure.address_key == key, LoginFailure.created_at > since)
    )
    return int(found.scalar_one())


async def _address_throttled(session: AsyncSession, key: str, now: datetime, limits: Limits) -> bool:
    """Whether the address ``key`` has used up its failures for the window."""
    return await address_failures(session, key, now - limits.address_window) >= limits.address_max_failures


async def _record_address_failure(session: AsyncSession, key: str, now: datetime, limits: Limits) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.created_at <= now - limits.address_window))
    session.add(LoginFailure(address_key=key, created_at=now))


async def _record_account_failure(session: AsyncSession, user: StaffUser, now: datetime, limits: Limits) -> bool:
    """Count one failure on the account (atomically); lock it at the threshold. Returns whether it locked now."""
    lock_expired = user.locked_until is not None and user.locked_until <= now
    failures = 1 if lock_expired else StaffUser.failed_logins + 1
    await session.execute(
        update(StaffUser).where(StaffUser.id == user.id)
        .values(failed_logins=failures, locked_until=None if lock_expired else StaffUser.locked_until)
        .execution_options(synchronize_session=False)
    )
    count = (await session.execute(select(StaffUser.failed_logins).where(StaffUser.id == user.id))).scalar_one()
    if count < limits.max_failures:
        return False
    await session.execute(
        update(StaffUser).where(StaffUser.id == user.id).values(locked_until=now + limits.lockout)
        .execution_options(synchronize_session=False)
    )
    accounts.audit(session, AuditKind.staff_account_locked, "assistant", user,
                   failed_logins=count, minutes=int(limits.lockout.total_seconds() // 60))
    return True


async def authenticate(
    session: AsyncSession, username: str, password: str, *, address: str, now: datetime, limits: Limits,
) -> Attempt:
    """Check one sign-in attempt and record its failure; the caller commits in every case."""
    key = address_key(address, limits.secret)
    if await _address_throttled(session, key, now, limits):
        logger.warning("sign-in refused: too many failures from one client address")
        return Attempt(Outcome.throttled)
    user = await accounts.get_user(session, username) if accounts.normalise_username(username) else None
    matches = await accounts.verify_password(user.password_hash if user else None, password)
    outcome = Outcome.ok
    if user is None:
        outcome = Outcome.invalid
    elif user.disabled_at is not None:
        outcome = Outcome.disabled
    elif user.locked_until is not None and user.locked_until > now:
        outcome = Outcome.locked
    elif not matches:
        outcome = Outcome.invalid
        if await _record_account_failure(session, user, now, limits):
            logger.warning("staff account %s locked after repeated failed sign-ins", user.id)
    if outcome is not Outcome.ok:
        await _record_address_failure(session, key, now, limits)
        return Attempt(outcome)
    await accounts.mark_signed_in(session, user)
    if accounts.needs_rehash(user.password_hash):
        await accounts.rehash(session, user, password)
    return Attempt(Outcome.ok, user)


async def confirm_password(
    session: AsyncSession, user: StaffUser, password: str, *, address: str, now: datetime, limits: Limits,
) -> Outcome:
    """Check a signed-in account's current password (to change it); a wrong one counts as a failed sign-in.

    So a borrowed session cannot guess its way to a new password: the same account
    lockout and client-address limit apply, and the caller ends the account's sessions
    when this returns ``locked``. The caller commits in every case.
    """
    key = address_key(address, limits.secret)
    if await _address_throttled(session, key, now, limits):
        logger.warning("password change refused: too many failures from one client address")
        return Outcome.throttled
    if user.locked_until is not None and user.locked_until > now:
        return Outcome.locked
    if await accounts.verify_password(user.password_hash, password):
        await accounts.mark_signed_in(session, user)  # the right password clears the failure count
        return Outcome.ok
    locked = await _record_account_failure(session, user, now, limits)
    await _record_address_failure(session, key, now, limits)
    if locked:
        logger.warning("staff account %s locked after repeated wrong current passwords", user.id)
    return Outcome.locked if locked else Outcome.invalid
