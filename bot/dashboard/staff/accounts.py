"""Dashboard accounts: usernames, argon2 password hashes, roles, disabling; every change audited.

Passwords must be hard to guess, not only long: ``zxcvbn`` (the password-strength
estimator from Dropbox, with its lists of common passwords, names and words, and its
patterns: repeats, sequences, keyboard walks, dates, l33t) must rate a new password at
least :data:`MIN_PASSWORD_SCORE` (3 of 4, "safely unguessable"). It reads the first
:data:`STRENGTH_CHECKED_CHARS` characters, its own limit.

Passwords are hashed with argon2id through argon2-cffi's ``PasswordHasher`` (its
defaults follow RFC 9106); hashing runs in a worker thread so the web app's event
loop keeps serving while it works. Account changes write an :class:`AuditEvent`
whose actor is the admin (or ``cli:<os user>`` for the command line); no password
or hash ever goes into the audit log or the logs.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from bot.core import clock
from bot.core.store import staff_sessions
from bot.core.store.models import ApiToken, AuditEvent, AuditKind, StaffRole, StaffUser

HASHER = PasswordHasher()
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
#: zxcvbn's score (0 to 4) a new password needs: 3 is "safely unguessable" against online guessing.
MIN_PASSWORD_SCORE = 3
#: zxcvbn refuses longer input; a password whose first 72 characters are strong is strong.
STRENGTH_CHECKED_CHARS = 72
#: Words a password should not be built from: this project's own vocabulary.
PROJECT_WORDS = ("dashboard", "clinic", "physio", "physiotherapy", "needling", "dryneedling", "staff", "admin")
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
_DUMMY_HASH: Optional[str] = None


class AccountError(ValueError):
    """A request about an account that cannot be done; the message can be shown to an admin."""


def normalise_username(raw: str) -> str:
    """Usernames compare case-insensitively: stored in lower case, without surrounding spaces."""
    return (raw or "").strip().lower()


def check_username(username: str) -> str:
    """The normalised username, or :class:`AccountError` saying what is wrong with it."""
    username = normalise_username(username)
    if not USERNAME_PATTERN.match(username):
        raise AccountError(
            "A username is 2 to 64 characters: letters, digits, and . _ @ - (starting with a letter or digit)."
        )
    return username


def check_password(password: str, username: str) -> None:
    """Raise :class:`AccountError` if ``password`` breaks the policy (length, not the username)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"A password needs at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"A password can have at most {MAX_PASSWORD_CHARS} characters.")
    if not password.strip():
        raise AccountError("A password cannot be only spaces.")
    username = normalise_username(username)
    if password.strip().lower() == username or (len(username) >= 4 and username in password.lower()):
        raise AccountError("A password cannot contain the username.")
    check_strength(password, username)


def check_strength(password: str, username: str = "") -> None:
    """:class:`AccountError` if zxcvbn rates ``password`` below :data:`MIN_PASSWORD_SCORE`, saying why."""
    rating = zxcvbn(password[:STRENGTH_CHECKED_CHARS], user_inputs=[username, *PROJECT_WORDS])
    if rating["score"] >= MIN_PASSWORD_SCORE:
        return
    feedback = rating.get("feedback") or {}
    why = (feedback.get("warning") or "").strip()
    raise AccountError(
        "This password is too easy to guess" + (f": {why.rstrip('.')}." if why else ".")
        + " Try a passphrase of four or more unrelated words, or a longer mix of words and symbols."
    )


PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def generate_password() -> str:
    """A random password that meets the policy (20 characters, about 116 bits), easy to read out."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(20))


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, computed in a worker thread."""
    return await asyncio.get_running_loop().run_in_executor(None, HASHER.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: Optional[str], password: str) -> bool:
    """Whether ``password`` matches; with no hash (unknown user) a dummy is checked, so timing tells nothing."""
    global _DUMMY_HASH
    if password_hash is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = await hash_password(secrets.token_urlsafe(16))
        await asyncio.get_running_loop().run_in_executor(None, _verify, _DUMMY_HASH, password)
        return False
    return await asyncio.get_running_loop().run_in_executor(None, _verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's hasher uses."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def audit(session: AsyncSession, kind: AuditKind, actor: str, user: StaffUser, **detail: object) -> None:
    """Append an account event: who did it (``actor``) to which account, never a password."""
    session.add(AuditEvent(kind=kind, actor=actor, detail={"username": user.username, **detail}))


def is_locked(user: StaffUser, now: Optional[datetime] = None) -> bool:
    """Whether too many failed sign-ins have locked the account for now."""
    return user.locked_until is not None and user.locked_until > (now or clock.now())


async def get_user(session: AsyncSession, username: str) -> Optional[StaffUser]:
    """The account named ``username`` (any case), or ``None``."""
    found = await session.execute(select(StaffUser).where(StaffUser.username == normalise_username(username)))
    return found.scalar_one_or_none()


async def require_user(session: AsyncSession, username: str) -> StaffUser:
    """The account named ``username``, or :class:`AccountError`."""
    user = await get_user(session, username)
    if user is None:
        raise AccountError(f"There is no account named {normalise_username(username)!r}.")
    return user


async def get_user_by_id(session: AsyncSession, user_id: int) -> Optional[StaffUser]:
    """The account with id ``user_id``, or ``None``."""
    return await session.get(StaffUser, user_id)


async def list_users(session: AsyncSession) -> list[StaffUser]:
    """Every account, by username."""
    return list((await session.execute(select(StaffUser).order_by(StaffUser.username))).scalars())


async def admin_exists(session: AsyncSession) -> bool:
    """Whether at least one enabled admin account exists."""
    found = await session.execute(
        select(func.count()).select_from(StaffUser).where(
            StaffUser.role == StaffRole.admin, StaffUser.disabled_at.is_(None)
        )
    )
    return bool(found.scalar_one())


async def create_user(
    session: AsyncSession, username: str, password: str, *, role: StaffRole = StaffRole.staff,
    display_name: str = "", actor: str, must_change_password: bool = False,
) -> StaffUser:
    """Create an account; :class:`AccountError` if the name is taken or the password is too weak."""
    username = check_username(username)
    check_password(password, username)
    display_name = " ".join((display_name or "").split())[:100] or username
    if await get_user(session, username) is not None:
        raise AccountError(f"An account named {username!r} already exists.")
    now = clock.now()
    user = StaffUser(
        username=username, display_name=display_name, role=StaffRole(role), password_hash=await hash_password(password),
        created_at=now, password_changed_at=now, must_change_password=must_change_password,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise AccountError(f"An account named {username!r} already exists.") from exc
    audit(session, AuditKind.staff_user_created, actor, user, role=user.role.value)
    return user


async def set_password(
    session: AsyncSession, user: StaffUser, password: str, *, actor: str, must_change: bool = False,
) -> None:
    """Give ``user`` a new password; their other sessions end, a lockout is lifted."""
    check_password(password, user.username)
    now = clock.now()
    user.password_hash = await hash_password(password)
    user.password_changed_at = now
    user.must_change_password = must_change
    user.failed_logins = 0
    user.locked_until = None
    await session.flush()
    await staff_sessions.end_all_for_user(session, user.id, now)
    kind = AuditKind.staff_password_reset if actor != user.username else AuditKind.staff_password_changed
    audit(session, kind, actor, user)
    await revoke_tokens(session, user, actor=actor, now=now, reason="password_changed")


async def rehash(session: AsyncSession, user: StaffUser, password: str) -> None:
    """Store a fresh hash of a just-verified password (the hasher's parameters changed)."""
    user.password_hash = await hash_password(password)
    await session.flush()


async def disable_user(session: AsyncSession, user: StaffUser, *, actor: str, now: Optional[datetime] = None) -> None:
    """Disable ``user``: no more sign-ins, their live sessions end, their API tokens are revoked."""
    if user.disabled_at is not None:
        return
    now = now or clock.now()
    user.disabled_at = now
    await session.flush()
    ended = await staff_sessions.end_all_for_user(session, user.id, now)
    audit(session, AuditKind.staff_user_disabled, actor, user, sessions_ended=ended)
    await revoke_tokens(session, user, actor=actor, now=now, reason="account_disabled")


async def enable_user(session: AsyncSession, user: StaffUser, *, actor: str) -> None:
    """Enable ``user`` again (a lockout is lifted too); no API token of before comes back to life."""
    if user.disabled_at is None:
        return
    user.disabled_at = None
    user.failed_logins = 0
    user.locked_until = None
    await session.flush()
    audit(session, AuditKind.staff_user_enabled, actor, user)
    # Disabling revoked them; this also catches tokens of an account disabled before that rule.
    await revoke_tokens(session, user, actor=actor, reason="account_enabled")


async def revoke_tokens(
    session: AsyncSession, user: StaffUser, *, actor: str, reason: str, now: Optional[datetime] = None,
) -> int:
    """Revoke every API token of ``user`` (a password reset, disabling, enabling); returns how many.

    A token is a password that never expires: whoever had one must not keep access
    past the moment the account's password or standing changed.
    """
    now = now or clock.now()
    found = await session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).order_by(ApiToken.id)
    )
    revoked = list(found.scalars())
    for row in revoked:
        row.revoked_at = now
        audit(session, AuditKind.api_token_revoked, actor, user, token_id=row.id, name=row.name, reason=reason)
    if revoked:
        await session.flush()
    return len(revoked)


async def set_role(session: AsyncSession, user: StaffUser, role: StaffRole, *, actor: str) -> None:
    """Make ``user`` staff, admin or a reception display; the last enabled admin cannot stop being one.

    A change to or from reception ends the account's sessions and revokes its API tokens: a
    reception session has no idle timeout (bot/core/store/staff_sessions.py), which a staff
    session must not inherit, and a reception account uses no token.
    """
    role = StaffRole(role)
    if user.role == role:
        return
    if user.role == StaffRole.admin and user.disabled_at is None:
        await _keep_an_admin(session, user)
    previous = user.role.value
    user.role = role
    await session.flush()
    ended = 0
    if StaffRole.reception in (role, StaffRole(previous)):
        now = clock.now()
        ended = await staff_sessions.end_all_for_user(session, user.id, now)
        await revoke_tokens(session, user, actor=actor, now=now, reason="role_changed")
    detail = {"sessions_ended": ended} if ended else {}
    audit(session, AuditKind.staff_role_changed, actor, user, role=role.value, previous_role=previous, **detail)


async def _keep_an_admin(session: AsyncSession, user: StaffUser) -> None:
    others = await session.execute(
        select(func.count()).select_from(StaffUser).where(
            StaffUser.role == StaffRole.admin, StaffUser.disabled_at.is_(None), StaffUser.id != user.id
        )
    )
    if not others.scalar_one():
        raise AccountError("This is the only enabled admin account; make another admin first.")


async def guard_last_admin(session: AsyncSession, user: StaffUser) -> None:
    """:class:`AccountError` if disabling ``user`` would leave no enabled admin."""
    if user.role == StaffRole.admin and user.disabled_at is None:
        await _keep_an_admin(session, user)


async def token_count(session: AsyncSession, user_id: int) -> int:
    """How many unrevoked API tokens the account has."""
    found = await session.execute(
        select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    )
    return int(found.scalar_one())


async def mark_signed_in(session: AsyncSession, user: StaffUser, now: Optional[datetime] = None) -> None:
    """A successful sign-in clears the failure count and an expired lock.

    A lock still in force stays: the account's owner signing in from their usual
    address must not hand whoever is guessing from elsewhere a fresh set of tries.
    """
    if is_locked(user, now):
        return
    await session.execute(
        update(StaffUser).where(StaffUser.id == user.id).values(failed_logins=0, locked_until=None)
    )


# --- dashboard alerts -------------------------------------------------------------------


@dataclass(frozen=True)
class AlertSettings:
    """How the dashboard alerts one account: a browser notification, a sound (each on or off)."""

    notifications: bool = True
    sound: bool = True


async def alert_settings(session: AsyncSession, user_id: int) -> AlertSettings:
    """The account's alert settings (the defaults, both on, for an account that is gone)."""
    row = (await session.execute(
        select(StaffUser.alert_notifications, StaffUser.alert_sound).where(StaffUser.id == user_id)
    )).first()
    if row is None:
        return AlertSettings()
    return AlertSettings(notifications=bool(row.alert_notifications), sound=bool(row.alert_sound))


async def set_alert_settings(session: AsyncSession, user_id: int, settings: AlertSettings) -> None:
    """Store the account's own choice (a preference, not an account change: not audited)."""
    await session.execute(
        update(StaffUser).where(StaffUser.id == user_id)
        .values(alert_notifications=settings.notifications, alert_sound=settings.sound)
    )
