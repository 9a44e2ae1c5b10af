"""Dashboard accounts from the command line: ``python -m bot.dashboard.staff COMMAND``.

Passwords are asked for twice without echo, or read from ``STAFF_PASSWORD`` (for
scripts); they are never printed, except a generated one, shown once. Every change
is audited with the actor ``cli:<os user>``. ``ensure-admin`` (run by ``make run``)
creates the first admin on a fresh install and does nothing once an admin exists.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from typing import Callable, Optional

from bot.core import process
from bot.core.settings import Settings
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import StaffRole
from bot.dashboard.staff import accounts, tokens
from bot.dashboard.staff.schema import schema_problem

EXIT_ERROR = 1
EXIT_NOT_MIGRATED = 3
FIRST_ADMIN = "admin"


def actor() -> str:
    """Who is at the keyboard, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def ask_password(username: str, read: Optional[Callable[[str], str]] = None) -> str:
    """``STAFF_PASSWORD``, or asked twice (without echo) until the policy is met and both agree."""
    read = read or getpass.getpass
    given = os.environ.get("STAFF_PASSWORD")
    if given is not None:
        accounts.check_password(given, username)
        return given
    if not sys.stdin.isatty():
        raise accounts.AccountError("No terminal to ask for a password: set STAFF_PASSWORD.")
    for _ in range(3):
        first = read(f"New password for {username}: ")
        try:
            accounts.check_password(first, username)
        except accounts.AccountError as exc:
            print(exc, file=sys.stderr)
            continue
        if read("Again: ") == first:
            return first
        print("The two passwords are not the same.", file=sys.stderr)
    raise accounts.AccountError("No password set.")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await COMMANDS[args.command](session, args, settings)
    finally:
        await engine.dispose()


async def create_user(session, args, settings) -> int:
    username = accounts.check_username(args.username)
    if await accounts.get_user(session, username) is not None:
        raise accounts.AccountError(f"An account named {username!r} already exists.")
    password = ask_password(username)
    user = await accounts.create_user(
        session, username, password, role=StaffRole(args.role), display_name=args.display_name or "", actor=actor(),
    )
    print(f"Created {user.role.value} account {user.username!r} ({user.display_name}).")
    return 0


async def reset_password(session, args, settings) -> int:
    user = await accounts.require_user(session, args.username)
    if args.generate:
        password = accounts.generate_password()
        await accounts.set_password(session, user, password, actor=actor(), must_change=True)
        print(f"One-time password for {user.username!r}: {password}")
        print("It is shown once. They choose their own password when they next sign in.")
    else:
        await accounts.set_password(session, user, ask_password(user.username), actor=actor())
        print(f"Password of {user.username!r} changed; their sessions have ended.")
    return 0


async def disable_user(session, args, settings) -> int:
    user = await accounts.require_user(session, args.username)
    await accounts.guard_last_admin(session, user)
    await accounts.disable_user(session, user, actor=actor())
    print(f"Disabled {user.username!r}: signed out everywhere, and their API tokens no longer work.")
    return 0


async def enable_user(session, args, settings) -> int:
    user = await accounts.require_user(session, args.username)
    await accounts.enable_user(session, user, actor=actor())
    print(f"Enabled {user.username!r}.")
    return 0


async def list_users(session, args, settings) -> int:
    users = await accounts.list_users(session)
    if not users:
        print("No accounts yet. Create one with: python -m bot.dashboard.staff create-user USERNAME --role admin")
        return 0
    print(f"{'USERNAME':<24} {'ROLE':<9} {'STATUS':<9} {'TOKENS':>6}  NAME")
    for user in users:
        status = "disabled" if user.disabled_at else "locked" if accounts.is_locked(user) else "enabled"
        count = await accounts.token_count(session, user.id)
        print(f"{user.username:<24} {user.role.value:<9} {status:<9} {count:>6}  {user.display_name}")
    return 0


async def issue_token(session, args, settings) -> int:
    user = await accounts.require_user(session, args.username)
    if user.role == StaffRole.reception:
        raise accounts.AccountError(
            f"{user.username!r} is a reception display account: it signs in on its screen and uses no API token.")
    token, row = await tokens.issue(session, user, args.name, actor=actor())
    print(f"API token {row.id} ({row.name!r}) for {user.username!r}, with the account's role ({user.role.value}):")
    print(token)
    print("It is shown once; only a hash is kept. Send it as: Authorization: Bearer <token>")
    return 0


async def revoke_token(session, args, settings) -> int:
    row = await tokens.revoke(session, args.id, actor=actor())
    print(f"API token {row.id} ({row.name!r}) is revoked.")
    return 0


async def list_tokens(session, args, settings) -> int:
    user_id = (await accounts.require_user(session, args.username)).id if args.username else None
    names = {user.id: user.username for user in await accounts.list_users(session)}
    print(f"{'ID':>5}  {'OWNER':<24} {'STATE':<8} {'LAST USED':<20} NAME")
    for row in await tokens.list_tokens(session, user_id):
        used = row.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if row.last_used_at else "never"
        state = "revoked" if row.revoked_at else "active"
        print(f"{row.id:>5}  {names.get(row.user_id, '?'):<24} {state:<8} {used:<20} {row.name}")
    return 0


async def ensure_admin(session, args, settings) -> int:
    if await accounts.admin_exists(session):
        return 0
    existing = await accounts.get_user(session, FIRST_ADMIN)
    if existing is not None:
        print(f"There is no enabled admin account, and {FIRST_ADMIN!r} exists as a {existing.role.value} account"
              f"{' (disabled)' if existing.disabled_at else ''}. Give someone the admin role, or enable it:"
              f" python -m bot.dashboard.staff enable-user {FIRST_ADMIN}", file=sys.stderr)
        return 0
    given = os.environ.get("DASHBOARD_ADMIN_PASSWORD")
    if given:
        try:
            accounts.check_password(given, FIRST_ADMIN)
        except accounts.AccountError as exc:
            raise accounts.AccountError(f"DASHBOARD_ADMIN_PASSWORD: {exc}") from exc
    password = given or accounts.generate_password()
    # Forced to change either way: a password kept in an environment file (and often in a
    # deploy script or a shell history) is known to more than the person who signs in.
    await accounts.create_user(
        session, FIRST_ADMIN, password, role=StaffRole.admin, display_name="Administrator", actor=actor(),
        must_change_password=True,
    )
    login = f"{settings.public_web_url}/staff/login"
    if given:
        print(f"Created the dashboard's first admin account {FIRST_ADMIN!r} with the password in DASHBOARD_ADMIN_PASSWORD.")
        print(f"Sign in at {login}; you will be asked to choose your own password then.")
        return 0
    print("=" * 72)
    print("Created the dashboard's first admin account.")
    print(f"  Sign in at: {login}")
    print(f"  Username:   {FIRST_ADMIN}")
    print(f"  Password:   {password}")
    print("This password is shown only this once. You will be asked to choose your own")
    print("when you sign in. Then create an account for each colleague on the Accounts page.")
    print("=" * 72)
    return 0


COMMANDS = {
    "create-user": create_user, "reset-password": reset_password, "disable-user": disable_user,
    "enable-user": enable_user, "list-users": list_users, "issue-token": issue_token,
    "revoke-token": revoke_token, "list-tokens": list_tokens, "ensure-admin": ensure_admin,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m bot.dashboard.staff", description="Manage staff dashboard accounts.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = commands.add_parser("create-user", help="create an account (password asked, or STAFF_PASSWORD)")
    create.add_argument("username")
    create.add_argument("--role", choices=[role.value for role in StaffRole], default="staff",
                        help="staff, admin, or reception (a display of the live queue without patient text)")
    create.add_argument("--display-name", default="", help="the name colleagues and patients see")
    reset = commands.add_parser("reset-password", help="set a new password; their sessions end")
    reset.add_argument("username")
    reset.add_argument("--generate", action="store_true", help="print a one-time password they must change")
    for name, text in (("disable-user", "stop an account signing in and end its sessions"),
                       ("enable-user", "let a disabled account sign in again")):
        commands.add_parser(name, help=text).add_argument("username")
    commands.add_parser("list-users", help="list the accounts")
    issue = commands.add_parser("issue-token", help="issue an API token (printed once)")
    issue.add_argument("username")
    issue.add_argument("--name", required=True, help="what the token is for")
    commands.add_parser("revoke-token", help="revoke an API token").add_argument("id", type=int)
    commands.add_parser("list-tokens", help="list API tokens").add_argument("username", nargs="?")
    commands.add_parser("ensure-admin", help="create the first admin if there is none (make run calls it)")
    return root


def main(argv: Optional[list[str]] = None, settings: Optional[Settings] = None) -> int:
    args = parser().parse_args(argv)
    settings = settings or process.start(read_secrets=False)  # accounts need the store, no secret
    problem = schema_problem(settings.database_url)
    if problem:
        print(f"{problem} Run `make migrate` first.", file=sys.stderr)
        return EXIT_NOT_MIGRATED
    try:
        return asyncio.run(run(args, settings))
    except accounts.AccountError as exc:
        print(exc, file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
