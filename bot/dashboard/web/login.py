"""Signing in and out of the dashboard, and changing one's own password.

The sign-in form is protected against login CSRF with a signed double-submit token:
the form page sets a short-lived ``SameSite=Strict`` cookie and puts the same value in
the form; a post whose field does not match it is refused. The value is signed (HMAC
with ``SESSION_SECRET``) and carries its issue time, so a cookie planted by a sibling
site or a man in the middle of plain HTTP, which cannot sign, is refused too. A
successful sign-in ends any session the browser had and starts a new one (new key,
new CSRF token) that records the keyed hash of the address it came from: the
account's usual addresses, which an outsider's failed guesses cannot lock out
(:mod:`bot.dashboard.staff.signin`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

import aiohttp_jinja2
import aiohttp_session
from aiohttp import web

from bot.core import clock
from bot.core.store import staff_sessions
from bot.dashboard.staff import accounts, signin
from bot.dashboard.web import auth
from bot.dashboard.web.keys import DB, SETTINGS
from bot.dashboard.web.session_storage import LIVE
from bot.dashboard.web.urls import url_for

logger = logging.getLogger(__name__)

LOGIN_COOKIE = "staff_login"
LOGIN_COOKIE_SECONDS = 3600
#: Where a sign-in lands when it was not sent from a dashboard page: the queue (bot/dashboard/web/pages.py).
HOME_ROUTE = "staff_queue"
FAILED = (
    "The username or password is not right, or this account cannot sign in now. "
    "After {failures} failed attempts, sign-in pauses for {minutes} minutes."
)
THROTTLED = "Too many failed sign-ins from this computer. Wait {minutes} minutes, then try again."
#: What the sign-in page says after ``?<key>=1`` (fixed sentences, never data from the request).
NOTICES = {
    "signed_out": "You have signed out.",
    "locked": "The current password was wrong too many times, so the account is locked for a while and "
              "was signed out everywhere. Ask an administrator if you need it sooner.",
    # Sent by the dashboard's scripts (static/staff/live.js) when the session ends under an open page.
    "idle": "You were signed out because the dashboard was not used for {idle_minutes} minutes. "
            "Sign in again to see new cases.",
    "expired": "You were signed out because the session reached its {session_hours}-hour limit. "
               "Sign in again to see new cases.",
    "ended": "Your session ended (signed out on another screen, or the account was changed). "
             "Sign in again to carry on.",
    # Sent by the reception display (static/staff/display.js), whose session has no idle timeout.
    "display": "The reception display was signed out: its session lasts {reception_days} days, or it was "
               "signed out elsewhere or the account was changed. Sign in again to show the queue.",
}


def login_token(secret: str, issued: int) -> str:
    """A sign-in form token: a nonce and its issue time (seconds), signed with ``secret``."""
    body = f"{secrets.token_urlsafe(24)}.{issued}"
    return f"{body}.{_signature(secret, body)}"


def _signature(secret: str, body: str) -> str:
    return hmac.new(secret.encode("utf-8"), b"staff-login\x00" + body.encode("utf-8"), hashlib.sha256).hexdigest()


def login_token_valid(token: str, secret: str, now: int) -> bool:
    """Whether ``token`` was signed with ``secret`` and issued less than an hour before ``now``."""
    body, _, signature = token.rpartition(".")
    issued = body.rpartition(".")[2]
    if not body or not issued.isdigit() or not hmac.compare_digest(signature.encode(), _signature(secret, body).encode()):
        return False
    return 0 <= now - int(issued) <= LOGIN_COOKIE_SECONDS


def client_address(request: web.Request, proxies: int) -> str:
    """Who is signing in: the socket's address, or behind ``WEB_PROXIES_COUNT`` reverse proxies the
    address the outermost of them saw (the ``proxies``-th ``X-Forwarded-For`` entry from the right).

    Without it, every sign-in through a proxy would come from the proxy's address, and an
    outsider's failures would count against the clinic's own computers."""
    if proxies > 0:
        hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", []) for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.remote or ""


def _next_path(value: Any) -> str:
    value = value if isinstance(value, str) else ""
    return value if value and value != auth.LOGIN_PATH and auth.SAFE_NEXT.match(value) else ""


def _login_page(request: web.Request, *, status: int = 200, error: str = "", notice: str = "",
                next_path: str = "", username: str = "") -> web.Response:
    settings = request.config_dict[SETTINGS]
    token = login_token(settings.session_secret, int(clock.now().timestamp()))
    response = aiohttp_jinja2.render_template(
        "staff/login.html", request,
        {"csrf_token": token, "error": error, "notice": notice, "next": next_path, "username": username},
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=LOGIN_COOKIE_SECONDS, path=auth.LOGIN_PATH,
        secure=settings.staff_cookie_secure, httponly=True, samesite="Strict",
    )
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    """GET /staff/login: the sign-in form (or straight to the dashboard when signed in already)."""
    await aiohttp_session.get_session(request)
    next_path = _next_path(request.query.get("next"))
    if request.get(LIVE) is not None:
        return auth.see_other(next_path or url_for(request, HOME_ROUTE))
    settings = request.config_dict[SETTINGS]
    notice = next((text for key, text in NOTICES.items() if request.query.get(key) == "1"), "").format(
        idle_minutes=settings.staff_idle_minutes, session_hours=settings.staff_session_hours,
        reception_days=settings.staff_reception_session_days)
    return _login_page(request, notice=notice, next_path=next_path)


async def login_submit(request: web.Request) -> web.StreamResponse:
    """POST /staff/login: check the form, then start a fresh session."""
    form = await request.post()
    settings = request.config_dict[SETTINGS]
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    given = str(form.get(auth.CSRF, ""))
    if not (auth.tokens_match(cookie, given)
            and login_token_valid(given, settings.session_secret, int(clock.now().timestamp()))):
        return auth.forbidden(request, "The sign-in form was out of date. Reload the page and try again.")
    username = str(form.get("username", ""))[:200]
    password = str(form.get("password", ""))[: accounts.MAX_PASSWORD_CHARS + 1]
    next_path = _next_path(form.get("next"))
    limits = signin.Limits.from_settings(settings)
    async with request.config_dict[DB]() as db, db.begin():
        attempt = await signin.authenticate(
            db, username, password, address=client_address(request, settings.web_proxies_count), now=clock.now(),
            limits=limits,
        )
    if attempt.outcome is signin.Outcome.throttled:
        minutes = int(limits.address_window.total_seconds() // 60)
        return _login_page(request, status=429, error=THROTTLED.format(minutes=minutes), next_path=next_path)
    if attempt.user is None:
        message = FAILED.format(failures=limits.max_failures, minutes=int(limits.lockout.total_seconds() // 60))
        return _login_page(
            request, status=401, error=message, next_path=next_path, username=accounts.normalise_username(username)[:64],
        )
    previous = await aiohttp_session.get_session(request)
    if previous.identity:
        async with request.config_dict[DB]() as db, db.begin():
            await staff_sessions.end(db, previous.identity, clock.now())
    session = await aiohttp_session.new_session(request)
    session["user_id"] = attempt.user.id
    session[signin.USUAL_ADDRESS] = signin.address_key(
        client_address(request, settings.web_proxies_count), settings.session_secret)
    logger.info("staff account %s signed in", attempt.user.id)
    if attempt.user.must_change_password:
        target = url_for(request, auth.PASSWORD_ROUTE)
    else:
        target = next_path or url_for(request, HOME_ROUTE)
    response = auth.see_other(target)
    response.del_cookie(LOGIN_COOKIE, path=auth.LOGIN_PATH)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /staff/logout: end the session on the server and forget the cookie."""
    session = await aiohttp_session.get_session(request)
    session.invalidate()
    return auth.see_other(url_for(request, auth.LOGIN_ROUTE, query={"signed_out": 1}))


async def password_form(request: web.Request) -> web.StreamResponse:
    """GET /staff/account/password: the form to choose a new password."""
    return _password_page(request)


def _password_page(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    forced = bool(request.get("staff_must_change_password"))
    return aiohttp_jinja2.render_template(
        "staff/password.html", request,
        {"error": error, "forced": forced, "min_chars": accounts.MIN_PASSWORD_CHARS}, status=status,
    )


async def password_submit(request: web.Request) -> web.StreamResponse:
    """POST /staff/account/password: check the current password, store the new one, sign in afresh."""
    identity: auth.StaffIdentity = request[auth.STAFF]
    if identity.via != "session":
        return auth.forbidden(request, "Change a password on the dashboard, not with an API token.")
    form = await request.post()
    current, new, again = (str(form.get(name, "")) for name in ("current_password", "new_password", "new_password_again"))
    if new != again:
        return _password_page(request, status=400, error="The two new passwords are not the same.")
    settings = request.config_dict[SETTINGS]
    limits = signin.Limits.from_settings(settings)
    now = clock.now()
    async with request.config_dict[DB]() as db, db.begin():
        user = await accounts.get_user_by_id(db, identity.id)
        checked = signin.Outcome.invalid if user is None else await signin.confirm_password(
            db, user, current, address=client_address(request, settings.web_proxies_count), now=now, limits=limits,
        )
        if checked is signin.Outcome.locked:
            # Too many wrong current passwords: whoever holds this session is signed out everywhere.
            await staff_sessions.end_all_for_user(db, identity.id, now)
    if checked is signin.Outcome.locked:
        session = await aiohttp_session.get_session(request)
        session.invalidate()
        return auth.see_other(url_for(request, auth.LOGIN_ROUTE, query={"locked": 1}))
    if checked is signin.Outcome.throttled:
        minutes = int(limits.address_window.total_seconds() // 60)
        return _password_page(request, status=429, error=THROTTLED.format(minutes=minutes))
    if checked is not signin.Outcome.ok:
        return _password_page(request, status=400, error=(
            f"The current password is not right. After {limits.max_failures} wrong tries in a row the account "
            "is locked and signed out."))
    async with request.config_dict[DB]() as db, db.begin():
        user = await accounts.get_user_by_id(db, identity.id)
        if new == current:
            return _password_page(request, status=400, error="Choose a password different from the current one.")
        try:
            await accounts.set_password(db, user, new, actor=identity.username)
        except accounts.AccountError as exc:
            return _password_page(request, status=400, error=str(exc))
    # Every session of the account ended with the change; this browser gets a new one.
    session = await aiohttp_session.new_session(request)
    session["user_id"] = identity.id
    session[signin.USUAL_ADDRESS] = signin.address_key(client_address(request, settings.web_proxies_count), limits.secret)
    return auth.see_other(url_for(request, HOME_ROUTE))


async def whoami(request: web.Request) -> web.Response:
    """GET /staff/api/me: the signed-in account, and the session's CSRF token for scripts."""
    identity: auth.StaffIdentity = request[auth.STAFF]
    return web.json_response({
        "id": identity.id, "username": identity.username, "display_name": identity.display_name,
        "role": identity.role, "via": identity.via, "csrf_token": request.get(auth.CSRF, ""),
    })


def setup(app: web.Application) -> None:
    """Add the sign-in, sign-out and password routes."""
    app.router.add_get(auth.LOGIN_PATH, login_form, name=auth.LOGIN_ROUTE)
    app.router.add_post(auth.LOGIN_PATH, login_submit, name="staff_login_submit")
    app.router.add_post(auth.LOGOUT_PATH, logout, name="staff_logout")
    app.router.add_get(auth.PASSWORD_PATH, password_form, name=auth.PASSWORD_ROUTE)
    app.router.add_post(auth.PASSWORD_PATH, password_submit, name="staff_password_submit")
    app.router.add_get("/staff/api/me", whoami, name="staff_api_me")
