"""Checking a sign-in: password, disabled accounts, lockouts an outsider cannot turn on staff.

Three counters, all in the store (not in memory), so they hold across web replicas:

* per client address: ``LOGIN_ADDRESS_MAX_FAILURES`` failures within
  ``LOGIN_ADDRESS_WINDOW_MINUTES`` pause that address, whatever account it tries;
* per account and address: ``LOGIN_MAX_FAILURES`` failures on one account from one
  address within ``LOGIN_LOCKOUT_MINUTES`` lock that account *for that address*;
* per account: ``LOGIN_MAX_FAILURES`` failures in a row from anywhere lock the account
  for ``LOGIN_LOCKOUT_MINUTES`` *except from its usual addresses*, those it has signed
  in from successfully before.

So five wrong passwords for ``admin`` from the internet stop further guessing from
everywhere new, but the right password from the staff member's usual computer still
works: nobody outside can lock them out. Addresses are stored as a keyed hash (HMAC
with the session secret), never as written; an account's usual addresses are the
keys recorded on its sessions (:data:`USUAL_ADDRESS`).

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

from bot.core.settings import Settings
from bot.core.store.models import AuditKind, LoginFailure, StaffSession, StaffUser
from bot.dashboard.staff import accounts

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


#: The session data key holding the keyed hash of the address a session signed in from.
USUAL_ADDRESS = "signin_address"
#: How many of an account's latest sessions say which addresses are its usual ones.
USUAL_SESSIONS = 200


def address_key(address: str, secret: str) -> str:
    """The stored form of a client address: HMAC-SHA-256 with the session secret."""
    return hmac.new(secret.encode("utf-8"), (address or "unknown").encode("utf-8"), hashlib.sha256).hexdigest()


def pair_key(address: str, user_id: int, secret: str) -> str:
    """The stored form of (client address, account), for the failures of one account from one address."""
    return address_key(f"{address or 'unknown'}\x00account:{user_id}", secret)


async def is_usual_address(session: AsyncSession, user_id: int, key: str) -> bool:
    """Whether the account has signed in successfully from the address ``key`` before."""
    found = await session.execute(
        select(StaffSession.data).where(StaffSession.user_id == user_id)
        .order_by(StaffSession.id.desc()).limit(USUAL_SESSIONS)
    )
    return any(isinstance(data, dict) and data.get(USUAL_ADDRESS) == key for data in found.scalars())


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
    kept = max(limits.address_window, limits.lockout)
    await session.execute(delete(LoginFailure).where(LoginFailure.created_at <= now - kept))
    session.add(LoginFailure(address_key=key, created_at=now))


async def _locked_for(
    session: AsyncSession, user: StaffUser, key: str, pair: str, now: datetime, limits: Limits,
) -> bool:
    """Whether sign-in to ``user`` is locked for this address (see the module docstring)."""
    if await address_failures(session, pair, now - limits.lockout) >= limits.max_failures:
        return True
    if user.locked_until is None or user.locked_until <= now:
        return False
    return not await is_usual_address(session, user.id, key)


async def _record_failure(
    session: AsyncSession, user: StaffUser, key: str, pair: str, now: datetime, limits: Limits,
) -> bool:
    """One wrong password for ``user`` from the address: every counter moves. Returns whether it locked now."""
    locked = await _record_account_failure(session, user, now, limits)
    session.add(LoginFailure(address_key=pair, created_at=now))
    await _record_address_failure(session, key, now, limits)
    return locked


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
    """Check one sign-in attempt and record its failure; the caller commits in every case.

    On success the caller records :func:`address_key` of ``address`` on the new session
    under :data:`USUAL_ADDRESS`, which makes it one of the account's usual addresses.
    """
    key = address_key(address, limits.secret)
    if await _address_throttled(session, key, now, limits):
        logger.warning("sign-in refused: too many failures from one client address")
        return Attempt(Outcome.throttled)
    user = await accounts.get_user(session, username) if accounts.normalise_username(username) else None
    matches = await accounts.verify_password(user.password_hash if user else None, password)
    if user is None:
        await _record_address_failure(session, key, now, limits)
        return Attempt(Outcome.invalid)
    if user.disabled_at is not None:
        await _record_address_failure(session, key, now, limits)
        return Attempt(Outcome.disabled)
    pair = pair_key(address, user.id, limits.secret)
    if await _locked_for(session, user, key, pair, now, limits):
        await _record_address_failure(session, key, now, limits)
        return Attempt(Outcome.locked)
    if not matches:
        if await _record_failure(session, user, key, pair, now, limits):
            logger.warning("staff account %s locked after repeated failed sign-ins", user.id)
        return Attempt(Outcome.invalid)
    await accounts.mark_signed_in(session, user, now)
    if accounts.needs_rehash(user.password_hash):
        await accounts.rehash(session, user, password)
    return Attempt(Outcome.ok, user)


async def confirm_password(
    session: AsyncSession, user: StaffUser, password: str, *, address: str, now: datetime, limits: Limits,
) -> Outcome:
    """Check a signed-in account's current password (to change it); a wrong one counts as a failed sign-in.

    So a borrowed session cannot guess its way to a new password: the same lockouts and
    client-address limit apply, and the caller ends the account's sessions when this
    returns ``locked``. The caller commits in every case.
    """
    key = address_key(address, limits.secret)
    if await _address_throttled(session, key, now, limits):
        logger.warning("password change refused: too many failures from one client address")
        return Outcome.throttled
    pair = pair_key(address, user.id, limits.secret)
    if await _locked_for(session, user, key, pair, now, limits):
        return Outcome.locked
    if await accounts.verify_password(user.password_hash, password):
        await accounts.mark_signed_in(session, user, now)  # the right password clears the failure count
        return Outcome.ok
    account_locked = await _record_failure(session, user, key, pair, now, limits)
    if account_locked:
        logger.warning("staff account %s locked after repeated wrong current passwords", user.id)
    if await address_failures(session, pair, now - limits.lockout) >= limits.max_failures:
        return Outcome.locked
    if account_locked and not await is_usual_address(session, user.id, key):
        return Outcome.locked
    return Outcome.invalid
