"""Staff accounts in the store: the password policy, argon2 hashes, roles, disabling, tokens, presence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core.store import presence
from bot.core.store import staff_sessions
from bot.core.store.models import AuditEvent, AuditKind, LoginFailure, StaffRole, StaffUser, utcnow
from bot.dashboard.staff import accounts, tokens
from bot.dashboard.staff.signin import USUAL_ADDRESS, Limits, Outcome, address_key, authenticate, confirm_password, pair_key

PASSWORD = "a perfectly long password"
LIMITS = Limits(max_failures=3, lockout=timedelta(minutes=15), address_max_failures=5,
                address_window=timedelta(minutes=15), secret="s")


async def create(sessions, username="rita", role=StaffRole.staff, password=PASSWORD, **extra) -> StaffUser:
    async with sessions() as session, session.begin():
        return await accounts.create_user(session, username, password, role=role, actor="ada", **extra)


async def audit_kinds(sessions) -> list[AuditKind]:
    async with sessions() as session:
        return list((await session.execute(select(AuditEvent.kind).order_by(AuditEvent.id))).scalars())


@pytest.mark.parametrize("password, problem", [
    ("short pass", "at least 12"),
    ("            ", "only spaces"),
    ("rita.jones.example", "username"),
    ("RITA.JONES-2024", "username"),
    ("x" * 1025, "at most"),
])
def test_the_password_policy_refuses_weak_passwords(password, problem):
    with pytest.raises(accounts.AccountError, match=problem):
        accounts.check_password(password, "rita.jones")


def test_a_generated_password_meets_the_policy_and_differs_each_time():
    generated = {accounts.generate_password() for _ in range(50)}
    assert len(generated) == 50
    for password in generated:
        accounts.check_password(password, "admin")


@pytest.mark.parametrize("username", ["a", "has space", "-dash-first", "x" * 65, "semi;colon", ""])
def test_usernames_are_checked(username):
    with pytest.raises(accounts.AccountError):
        accounts.check_username(username)


async def test_a_new_account_stores_an_argon2id_hash_never_the_password(sessions):
    user = await create(sessions, "Rita.Jones", display_name="  Rita   Jones ")

    assert user.username == "rita.jones" and user.display_name == "Rita Jones"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert await accounts.verify_password(user.password_hash, PASSWORD)
    assert not await accounts.verify_password(user.password_hash, PASSWORD + "!")


async def test_usernames_are_unique_whatever_their_case(sessions):
    await create(sessions, "rita")
    with pytest.raises(accounts.AccountError, match="already exists"):
        await create(sessions, "RITA")


async def test_account_changes_are_audited_with_the_actor_and_without_secrets(sessions):
    user = await create(sessions)
    async with sessions() as session, session.begin():
        user = await session.get(StaffUser, user.id)
        await accounts.set_password(session, user, "another long password", actor="ada", must_change=True)
        await accounts.set_role(session, user, StaffRole.admin, actor="ada")
        await accounts.disable_user(session, user, actor="ada")
        await accounts.enable_user(session, user, actor="ada")
    async with sessions() as session:
        events = (await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()

    assert [event.kind for event in events] == [
        AuditKind.staff_user_created, AuditKind.staff_password_reset, AuditKind.staff_role_changed,
        AuditKind.staff_user_disabled, AuditKind.staff_user_enabled,
    ]
    assert {event.actor for event in events} == {"ada"}
    assert all(event.detail["username"] == "rita" for event in events)
    text = repr([event.detail for event in events])
    assert "long password" not in text and "argon2" not in text


async def test_the_last_enabled_admin_cannot_be_demoted_or_guarded_away(sessions):
    await create(sessions, "ada", role=StaffRole.admin)
    async with sessions() as session, session.begin():
        ada = await accounts.get_user(session, "ada")
        with pytest.raises(accounts.AccountError, match="only enabled admin"):
            await accounts.set_role(session, ada, StaffRole.staff, actor="ada")
        with pytest.raises(accounts.AccountError, match="only enabled admin"):
            await accounts.guard_last_admin(session, ada)
    await create(sessions, "boss", role=StaffRole.admin)
    async with sessions() as session, session.begin():
        await accounts.set_role(session, await accounts.get_user(session, "ada"), StaffRole.staff, actor="boss")
        assert await accounts.admin_exists(session)


async def test_disabling_ends_every_open_session_of_the_account(sessions):
    user = await create(sessions)
    now = utcnow()
    async with sessions() as session, session.begin():
        for _ in range(2):
            await staff_sessions.start(session, user.id, now=now, idle=timedelta(minutes=15), lifetime=timedelta(hours=12))
    async with sessions() as session, session.begin():
        await accounts.disable_user(session, await session.get(StaffUser, user.id), actor="ada")

    assert not await presence.staff_signed_in(sessions)
    assert AuditKind.staff_user_disabled in await audit_kinds(sessions)


async def test_presence_follows_live_sessions_only(sessions):
    user = await create(sessions)
    now = utcnow()
    assert not await presence.staff_signed_in(sessions, now)
    async with sessions() as session, session.begin():
        key, _ = await staff_sessions.start(session, user.id, now=now, idle=timedelta(minutes=15), lifetime=timedelta(hours=12))

    assert await presence.staff_signed_in(sessions, now + timedelta(minutes=14))
    assert not await presence.staff_signed_in(sessions, now + timedelta(minutes=16))
    async with sessions() as session, session.begin():
        await staff_sessions.end(session, key, now)
    assert not await presence.staff_signed_in(sessions, now)


async def test_sign_in_outcomes(sessions):
    user = await create(sessions)
    now = utcnow()

    async def attempt(username, password, address="10.0.0.1", at=now):
        async with sessions() as session, session.begin():
            return (await authenticate(session, username, password, address=address, now=at, limits=LIMITS)).outcome

    assert await attempt("rita", PASSWORD) is Outcome.ok
    assert await attempt("nobody", PASSWORD) is Outcome.invalid
    assert await attempt("", "") is Outcome.invalid
    for _ in range(3):
        assert await attempt("rita", "wrong wrong wrong", address="10.0.0.2") is Outcome.invalid
    assert await attempt("rita", PASSWORD, address="10.0.0.3") is Outcome.locked
    assert await attempt("rita", PASSWORD, address="10.0.0.3", at=now + timedelta(minutes=16)) is Outcome.ok
    async with sessions() as session, session.begin():
        await accounts.disable_user(session, await session.get(StaffUser, user.id), actor="ada")
    assert await attempt("rita", PASSWORD, address="10.0.0.4") is Outcome.disabled


async def test_client_addresses_are_stored_as_a_keyed_hash(sessions):
    await create(sessions)
    async with sessions() as session, session.begin():
        await authenticate(session, "rita", "wrong wrong wrong", address="203.0.113.9", now=utcnow(), limits=LIMITS)
    async with sessions() as session:
        rows = (await session.execute(select(LoginFailure))).scalars().all()
    user_id = (await _user(sessions, "rita")).id
    assert sorted(row.address_key for row in rows) == sorted([address_key("203.0.113.9", "s"), pair_key("203.0.113.9", user_id, "s")])
    assert all("203.0.113.9" not in row.address_key for row in rows)
    assert address_key("203.0.113.9", "s") != address_key("203.0.113.9", "other secret")


async def _user(sessions, username: str) -> StaffUser:
    async with sessions() as session:
        return await accounts.get_user(session, username)


async def _signed_in_before_from(sessions, user: StaffUser, address: str) -> None:
    """What the sign-in route does on success: the session records the keyed hash of the address."""
    async with sessions() as session, session.begin():
        await staff_sessions.start(session, user.id, now=utcnow(), idle=timedelta(minutes=15),
                                   lifetime=timedelta(hours=12), data={USUAL_ADDRESS: address_key(address, "s")})


async def _attempt(sessions, password: str, address: str, at=None, username="rita") -> Outcome:
    async with sessions() as session, session.begin():
        attempt = await authenticate(session, username, password, address=address, now=at or utcnow(), limits=LIMITS)
    return attempt.outcome


async def test_an_outsiders_failures_do_not_lock_staff_out_of_their_usual_address(sessions):
    user = await create(sessions)
    await _signed_in_before_from(sessions, user, "10.0.0.1")
    for _ in range(LIMITS.max_failures):
        assert await _attempt(sessions, "wrong wrong wrong", "198.51.100.7") is Outcome.invalid

    assert await _attempt(sessions, PASSWORD, "203.0.113.50") is Outcome.locked, "a new address is locked out"
    assert await _attempt(sessions, PASSWORD, "10.0.0.1") is Outcome.ok, "the usual address still signs in"
    assert await _attempt(sessions, PASSWORD, "203.0.113.50") is Outcome.locked, "signing in lifted no lock"
    assert await _attempt(sessions, PASSWORD, "198.51.100.7") is Outcome.locked


async def test_failures_from_the_usual_address_still_lock_it(sessions):
    user = await create(sessions)
    await _signed_in_before_from(sessions, user, "10.0.0.1")
    for _ in range(LIMITS.max_failures):
        assert await _attempt(sessions, "wrong wrong wrong", "10.0.0.1") is Outcome.invalid

    assert await _attempt(sessions, PASSWORD, "10.0.0.1") is Outcome.locked
    later = utcnow() + LIMITS.lockout + timedelta(minutes=1)
    assert await _attempt(sessions, PASSWORD, "10.0.0.1", at=later) is Outcome.ok


async def test_one_address_locks_an_account_only_for_itself_before_the_account_lock(sessions):
    user = await create(sessions)
    await _signed_in_before_from(sessions, user, "10.0.0.1")
    limits = Limits(max_failures=3, lockout=timedelta(minutes=15), address_max_failures=50,
                    address_window=timedelta(minutes=15), secret="s")
    async with sessions() as session, session.begin():
        for _ in range(3):
            await authenticate(session, "rita", "wrong wrong wrong", address="10.0.0.1", now=utcnow(), limits=limits)
    async with sessions() as session, session.begin():
        assert (await authenticate(session, "rita", PASSWORD, address="10.0.0.1", now=utcnow(), limits=limits)).outcome is Outcome.locked


async def test_a_wrong_current_password_from_the_usual_address_is_not_locked_by_an_outsider(sessions):
    user = await create(sessions)
    await _signed_in_before_from(sessions, user, "10.0.0.1")
    for _ in range(LIMITS.max_failures):
        await _attempt(sessions, "wrong wrong wrong", "198.51.100.7")
    async with sessions() as session, session.begin():
        fresh = await session.get(StaffUser, user.id)
        assert await confirm_password(session, fresh, PASSWORD, address="10.0.0.1", now=utcnow(), limits=LIMITS) is Outcome.ok
        assert await confirm_password(session, fresh, PASSWORD, address="198.51.100.8", now=utcnow(), limits=LIMITS) is Outcome.locked


@pytest.mark.parametrize("password", [
    "aaaaaaaaaaaa", "password1234", "qwertyuiop123", "123456789012", "abcdefghijkl", "iloveyou2024!",
    "Password1234!", "dryneedling2024",
])
def test_common_passwords_and_patterns_are_refused_with_a_clear_message(password):
    with pytest.raises(accounts.AccountError, match="too easy to guess"):
        accounts.check_password(password, "rita")


@pytest.mark.parametrize("password", ["a perfectly long password", "kite marble orbit lantern", "Vq3!rT9#mZp2xL"])
def test_hard_to_guess_passwords_are_accepted(password):
    accounts.check_password(password, "rita")


def test_only_the_first_characters_of_a_very_long_password_are_rated():
    accounts.check_password("kite marble orbit lantern " * 30, "rita")
    with pytest.raises(accounts.AccountError, match="too easy to guess"):
        accounts.check_password("a" * 80 + "kite marble orbit lantern", "rita")


async def _token_for(sessions, user: StaffUser, name: str = "export") -> str:
    async with sessions() as session, session.begin():
        token, _ = await tokens.issue(session, await session.get(StaffUser, user.id), name, actor="ada")
    return token


async def _token_works(sessions, token: str) -> bool:
    async with sessions() as session, session.begin():
        return await tokens.authenticate(session, token, utcnow()) is not None


async def test_a_password_reset_revokes_every_api_token_of_the_account(sessions):
    user = await create(sessions)
    first, second = await _token_for(sessions, user, "one"), await _token_for(sessions, user, "two")
    async with sessions() as session, session.begin():
        await accounts.set_password(session, await session.get(StaffUser, user.id), "another long password",
                                    actor="ada", must_change=False)

    assert not await _token_works(sessions, first) and not await _token_works(sessions, second)
    async with sessions() as session:
        assert all(row.revoked_at is not None for row in await tokens.list_tokens(session, user.id))
    assert (await audit_kinds(sessions)).count(AuditKind.api_token_revoked) == 2


async def test_re_enabling_an_account_does_not_bring_its_tokens_back(sessions):
    user = await create(sessions)
    token = await _token_for(sessions, user)
    async with sessions() as session, session.begin():
        await accounts.disable_user(session, await session.get(StaffUser, user.id), actor="ada")
    async with sessions() as session, session.begin():
        await accounts.enable_user(session, await session.get(StaffUser, user.id), actor="ada")

    assert not await _token_works(sessions, token)
    assert await _token_works(sessions, await _token_for(sessions, user, "new one"))


async def test_enabling_revokes_tokens_left_unrevoked_by_an_older_disable(sessions):
    user = await create(sessions)
    token = await _token_for(sessions, user)
    async with sessions() as session, session.begin():
        row = await session.get(StaffUser, user.id)
        row.disabled_at = utcnow()  # disabled the way releases before token revocation did
    async with sessions() as session, session.begin():
        await accounts.enable_user(session, await session.get(StaffUser, user.id), actor="ada")

    assert not await _token_works(sessions, token)


async def test_no_token_works_while_a_password_change_is_pending(sessions):
    user = await create(sessions)
    token = await _token_for(sessions, user)
    async with sessions() as session, session.begin():
        (await session.get(StaffUser, user.id)).must_change_password = True

    assert not await _token_works(sessions, token)
    async with sessions() as session, session.begin():
        (await session.get(StaffUser, user.id)).must_change_password = False
    assert await _token_works(sessions, token)


async def test_old_address_failures_are_pruned(sessions):
    now = utcnow()
    async with sessions() as session, session.begin():
        for minutes in (60, 50, 40):
            await authenticate(session, "nobody", "x" * 12, address="a", now=now - timedelta(minutes=minutes), limits=LIMITS)
    async with sessions() as session, session.begin():
        await authenticate(session, "nobody", "x" * 12, address="a", now=now, limits=LIMITS)
    async with sessions() as session:
        assert len((await session.execute(select(LoginFailure))).scalars().all()) == 1


async def test_tokens_are_issued_named_listed_and_revoked(sessions):
    user = await create(sessions)
    async with sessions() as session, session.begin():
        token, row = await tokens.issue(session, await session.get(StaffUser, user.id), " nightly  export ", actor="ada")
    assert token.startswith("dnst_") and row.name == "nightly export"
    async with sessions() as session, session.begin():
        assert (await tokens.authenticate(session, token, utcnow())).username == "rita"
        assert await tokens.authenticate(session, token + "x", utcnow()) is None
        assert await tokens.authenticate(session, "not-a-token", utcnow()) is None
        await tokens.revoke(session, row.id, actor="ada")
    async with sessions() as session, session.begin():
        assert await tokens.authenticate(session, token, utcnow()) is None
        [listed] = await tokens.list_tokens(session, user.id)
        assert listed.revoked_at is not None
        with pytest.raises(accounts.AccountError):
            await tokens.revoke(session, 999, actor="ada")
    assert await audit_kinds(sessions) == [
        AuditKind.staff_user_created, AuditKind.api_token_issued, AuditKind.api_token_revoked,
    ]


async def test_a_token_needs_a_name(sessions):
    user = await create(sessions)
    async with sessions() as session, session.begin():
        with pytest.raises(accounts.AccountError, match="name"):
            await tokens.issue(session, await session.get(StaffUser, user.id), "   ", actor="ada")


async def test_no_token_is_issued_while_a_password_change_is_pending(sessions):
    user = await create(sessions, must_change_password=True)
    async with sessions() as session, session.begin():
        with pytest.raises(accounts.AccountError, match="own password first"):
            await tokens.issue(session, await session.get(StaffUser, user.id), "export", actor="ada")
