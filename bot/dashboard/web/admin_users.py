"""Account management for admins: the page ``/staff/admin/users`` and the JSON API ``/staff/api/users``.

Admins create accounts, disable and enable them, change roles and reset passwords.
The roles are staff, admin and reception (a reception display: the live queue without
patient text on a trusted screen, nothing else; :mod:`bot.dashboard.web.display`).
A new account and a reset get a generated one-time password, shown once in the
answer and never stored readable; its holder chooses their own at the next
sign-in. Every change is audited with the admin's username (bot/dashboard/staff/accounts.py).
The last enabled admin cannot be disabled or demoted, and nobody disables themself.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

import aiohttp_jinja2
import aiohttp_session
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.store.models import StaffRole, StaffUser
from bot.dashboard.staff import accounts
from bot.dashboard.web import auth
from bot.dashboard.web.keys import DB
from bot.dashboard.web.urls import url_for

PAGE = "/staff/admin/users"
API = "/staff/api/users"
FLASH = "flash"
#: How the page names each role (auth.ROLES), and what it says a role is for when creating an account.
ROLE_LABELS = {"staff": "Staff", "admin": "Admin", "reception": "Reception display"}
ROLE_HINTS = {
    "staff": "Staff: works on escalations",
    "admin": "Admin: also manages accounts",
    "reception": "Reception display: shows the live queue without patient text, stays signed in",
}
ROLE_ERROR = "The role is staff, admin or reception."
ROLE_BECOMES = {"staff": "staff", "admin": "an admin", "reception": "a reception display"}
Action = Callable[[AsyncSession, StaffUser, auth.StaffIdentity, dict[str, Any]], Awaitable[Optional[str]]]


def user_json(user: StaffUser, tokens: int = 0) -> dict[str, Any]:
    """An account as the API shows it (never the hash)."""
    return {
        "id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role.value,
        "disabled": user.disabled_at is not None, "locked": accounts.is_locked(user),
        "must_change_password": bool(user.must_change_password), "api_tokens": tokens,
        "created_at": user.created_at.isoformat(),
    }


async def _users(request: web.Request) -> list[dict[str, Any]]:
    async with request.config_dict[DB]() as db:
        return [user_json(user, await accounts.token_count(db, user.id)) for user in await accounts.list_users(db)]


async def _create(db: AsyncSession, identity: auth.StaffIdentity, fields: dict[str, Any]) -> tuple[StaffUser, str]:
    password = accounts.generate_password()
    role = str(fields.get("role") or "staff")
    if role not in auth.ROLES:
        raise accounts.AccountError(ROLE_ERROR)
    user = await accounts.create_user(
        db, str(fields.get("username", "")), password, role=StaffRole(role),
        display_name=str(fields.get("display_name", "")), actor=identity.username, must_change_password=True,
    )
    return user, password


async def _disable(db: AsyncSession, user: StaffUser, identity: auth.StaffIdentity, fields: dict) -> Optional[str]:
    if user.id == identity.id:
        raise accounts.AccountError("You cannot disable your own account.")
    await accounts.guard_last_admin(db, user)
    await accounts.disable_user(db, user, actor=identity.username)
    return f"{user.username} is disabled and signed out everywhere."


async def _enable(db: AsyncSession, user: StaffUser, identity: auth.StaffIdentity, fields: dict) -> Optional[str]:
    await accounts.enable_user(db, user, actor=identity.username)
    return f"{user.username} can sign in again."


async def _role(db: AsyncSession, user: StaffUser, identity: auth.StaffIdentity, fields: dict) -> Optional[str]:
    role = str(fields.get("role", ""))
    if role not in auth.ROLES:
        raise accounts.AccountError(ROLE_ERROR)
    await accounts.set_role(db, user, StaffRole(role), actor=identity.username)
    return f"{user.username} is now {ROLE_BECOMES[role]}."


ACTIONS: dict[str, Action] = {"disable": _disable, "enable": _enable, "role": _role}


async def _fields(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        return body if isinstance(body, dict) else {}
    return dict(await request.post())


def _user_id(request: web.Request) -> int:
    return int(request.match_info["user_id"])


async def _act(request: web.Request, name: str) -> tuple[Optional[StaffUser], Optional[str], Optional[str]]:
    """Run one action on the account in the path; returns (account, message, error)."""
    identity: auth.StaffIdentity = request[auth.STAFF]
    fields = await _fields(request)
    async with request.config_dict[DB]() as db, db.begin():
        user = await accounts.get_user_by_id(db, _user_id(request))
        if user is None:
            return None, None, "There is no such account."
        try:
            return user, await ACTIONS[name](db, user, identity, fields), None
        except accounts.AccountError as exc:
            return user, None, str(exc)


async def _reset(request: web.Request) -> tuple[Optional[StaffUser], Optional[str], Optional[str]]:
    """Give the account in the path a one-time password; returns (account, password, error)."""
    identity: auth.StaffIdentity = request[auth.STAFF]
    async with request.config_dict[DB]() as db, db.begin():
        user = await accounts.get_user_by_id(db, _user_id(request))
        if user is None:
            return None, None, "There is no such account."
        password = accounts.generate_password()
        await accounts.set_password(db, user, password, actor=identity.username, must_change=True)
        return user, password, None


# The page


@auth.require_role("admin")
async def users_page(request: web.Request) -> web.StreamResponse:
    """GET /staff/admin/users: the accounts, and forms to change them."""
    session = await aiohttp_session.get_session(request)
    flash = session.pop(FLASH, None)
    return await _page_with_users(request, flash=flash if isinstance(flash, dict) else None)


def _render(request: web.Request, *, status: int = 200, flash: Optional[dict] = None, users: Any = None,
            created: Optional[dict] = None, form: Optional[dict] = None) -> web.Response:
    return aiohttp_jinja2.render_template("staff/admin_users.html", request, {
        "users": users, "flash": flash, "created": created, "form": form or {},
        "roles": auth.ROLES, "role_labels": ROLE_LABELS, "role_hints": ROLE_HINTS,
        "me": request[auth.STAFF].id, "section": "accounts",
    }, status=status)


async def _page_with_users(request: web.Request, **context: Any) -> web.Response:
    return _render(request, users=await _users(request), **context)


async def _redirect_with(request: web.Request, flash: dict) -> web.Response:
    session = await aiohttp_session.get_session(request)
    session[FLASH] = flash
    return auth.see_other(url_for(request, auth.ACCOUNTS_ROUTE))


@auth.require_role("admin")
async def create_from_form(request: web.Request) -> web.StreamResponse:
    """POST /staff/admin/users: create an account; the answer shows its one-time password once."""
    fields = await _fields(request)
    identity: auth.StaffIdentity = request[auth.STAFF]
    async with request.config_dict[DB]() as db, db.begin():
        try:
            user, password = await _create(db, identity, fields)
        except accounts.AccountError as exc:
            error = {"kind": "error", "text": str(exc)}
            form = {name: str(fields.get(name, ""))[:100] for name in ("username", "display_name", "role")}
            return await _page_with_users(request, status=400, flash=error, form=form)
    created = {"username": user.username, "password": password, "reset": False}
    return await _page_with_users(request, created=created)


@auth.require_role("admin")
async def reset_from_form(request: web.Request) -> web.StreamResponse:
    """POST /staff/admin/users/{user_id}/reset-password: the answer shows the one-time password once."""
    user, password, error = await _reset(request)
    if error or user is None:
        return await _redirect_with(request, {"kind": "error", "text": error or "Not done."})
    return await _page_with_users(request, created={"username": user.username, "password": password, "reset": True})


def _form_action(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @auth.require_role("admin")
    async def handler(request: web.Request) -> web.StreamResponse:
        _, message, error = await _act(request, name)
        flash = {"kind": "error", "text": error} if error else {"kind": "ok", "text": message}
        return await _redirect_with(request, flash)

    handler.__name__ = handler.__qualname__ = f"{name}_from_form"
    return handler


# The JSON API


@auth.require_role("admin")
async def list_api(request: web.Request) -> web.Response:
    """GET /staff/api/users."""
    return web.json_response({"users": await _users(request)})


@auth.require_role("admin")
async def create_api(request: web.Request) -> web.Response:
    """POST /staff/api/users {username, display_name, role}: 201 with the one-time password (shown once)."""
    fields = await _fields(request)
    async with request.config_dict[DB]() as db, db.begin():
        try:
            user, password = await _create(db, request[auth.STAFF], fields)
        except accounts.AccountError as exc:
            return web.json_response({"error": "invalid", "message": str(exc)}, status=400)
        body = {"user": user_json(user), "one_time_password": password}
    return web.json_response(body, status=201)


@auth.require_role("admin")
async def reset_api(request: web.Request) -> web.Response:
    """POST /staff/api/users/{user_id}/reset-password: the new one-time password (shown once)."""
    user, password, error = await _reset(request)
    if user is None:
        return web.json_response({"error": "not_found", "message": error}, status=404)
    return web.json_response({"user": user_json(user), "one_time_password": password})


def _api_action(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @auth.require_role("admin")
    async def handler(request: web.Request) -> web.StreamResponse:
        user, message, error = await _act(request, name)
        if user is None:
            return web.json_response({"error": "not_found", "message": error}, status=404)
        if error:
            return web.json_response({"error": "invalid", "message": error}, status=400)
        async with request.config_dict[DB]() as db:
            fresh = await accounts.get_user_by_id(db, user.id)
            return web.json_response({"user": user_json(fresh, await accounts.token_count(db, user.id)), "message": message})

    handler.__name__ = handler.__qualname__ = f"{name}_api"
    return handler


def setup(app: web.Application) -> None:
    """Add the admin page and API routes."""
    one = r"/{user_id:\d+}"
    app.router.add_get(PAGE, users_page, name=auth.ACCOUNTS_ROUTE)
    app.router.add_post(PAGE, create_from_form, name="staff_admin_users_create")
    app.router.add_post(PAGE + one + "/reset-password", reset_from_form, name="staff_admin_users_reset")
    app.router.add_get(API, list_api, name="staff_api_users")
    app.router.add_post(API, create_api, name="staff_api_users_create")
    app.router.add_post(API + one + "/reset-password", reset_api, name="staff_api_users_reset")
    for name in ACTIONS:
        app.router.add_post(f"{PAGE}{one}/{name}", _form_action(name), name=f"staff_admin_users_{name}")
        app.router.add_post(f"{API}{one}/{name}", _api_action(name), name=f"staff_api_users_{name}")
