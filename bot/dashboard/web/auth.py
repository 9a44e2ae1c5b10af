"""Who is asking: authentication, roles and CSRF for everything under ``/staff``.

Every path under ``/staff`` needs a signed-in staff member, except the sign-in page
(``/staff/login``) and the dashboard's static assets (``/staff/static/``). A request
is signed in by its session cookie (:mod:`bot.dashboard.web.session_storage`) or by an API
token (``Authorization: Bearer``; a request that sends the header is judged by the
token alone). Anonymous page requests are sent to the sign-in page (303); anonymous
API requests (``/staff/api/``) get a 401 JSON answer.

The identity is ``request["staff"]``, a :class:`StaffIdentity`. Routes for admins
only are wrapped in :func:`require_role`.

A reception display account (role ``reception``: a trusted screen at the front desk) sees
one page, the live queue display without patient text (:mod:`bot.dashboard.web.display`).
:func:`authenticate` decides that here, once, for every route: a reception session reaches
only the routes named in :data:`RECEPTION_ROUTES` (the display, its data, sign-out and the
password change); any other dashboard page sends it to the display (303, for a page
asked for with GET), and anything else (the API, forms, actions, exports, admin) is
refused with 403. A reception account's API token is refused everywhere: the display is a
signed-in screen, not a script. Its session never signs out for being idle
(:mod:`bot.core.store.staff_sessions`), so its requests all count as activity. Unsafe methods (POST, PUT, PATCH, DELETE)
from a session must carry the session's CSRF token, in the ``X-CSRF-Token`` header or
a ``csrf_token`` form field; token requests carry no cookie and need none. Templates
get ``staff`` and ``csrf_token`` from :func:`template_context`.

A request asking for an event stream (``Accept: text/event-stream``), or a fetch the
stream caused (``X-Live-Refresh: 1``, sent by the dashboard's live.js), is not activity:
it does not postpone the idle sign-out, so an open dashboard left alone still signs out.
"""

from __future__ import annotations

import functools
import hmac
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

import aiohttp_jinja2
import aiohttp_session
from aiohttp import web

from bot.core import clock
from bot.core.store import staff_sessions
from bot.dashboard.staff import tokens
from bot.dashboard.web.keys import DB, SETTINGS
from bot.dashboard.web.session_storage import COOKIE_NAME, COOKIE_PATH, LIVE, DatabaseStorage
from bot.dashboard.web.urls import has_route, url_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STAFF = "staff"
CSRF = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_PATH = "/staff/login"
PASSWORD_PATH = "/staff/account/password"
LOGOUT_PATH = "/staff/logout"
#: Route names (:mod:`bot.dashboard.web.login`, :mod:`bot.dashboard.web.admin_users`) of the pages this module sends people to.
LOGIN_ROUTE = "staff_login"
PASSWORD_ROUTE = "staff_password"
ACCOUNTS_ROUTE = "staff_admin_users"
STATIC_PREFIX = "/staff/static/"
API_PREFIX = "/staff/api/"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The roles an account can have (what the admins' page and API offer).
ROLES = ("staff", "admin", "reception")
RECEPTION = "reception"
#: Each role and what it includes: admins may do everything staff may; reception has no staff route.
ROLE_RANK = {RECEPTION: 0, "staff": 1, "admin": 2}
#: The roles :func:`require_role` takes (a route for reception is listed in :data:`RECEPTION_ROUTES`).
REQUIRABLE_ROLES = ("staff", "admin")
#: The reception display's routes (bot/dashboard/web/display.py).
DISPLAY_ROUTE = "staff_display"
DISPLAY_DATA_ROUTE = "staff_api_display"
#: Every route a reception session may reach, by name; nothing else, present or added later.
RECEPTION_ROUTES = frozenset({
    DISPLAY_ROUTE, DISPLAY_DATA_ROUTE, "staff_logout", PASSWORD_ROUTE, "staff_password_submit",
})
#: Where a page may send someone back to after sign-in: a dashboard path, nothing else.
SAFE_NEXT = re.compile(r"^/staff(/[A-Za-z0-9_\-]+)*/?$")
SESSION_STORAGE = web.AppKey("staff_session_storage", DatabaseStorage)


@dataclass(frozen=True)
class StaffIdentity:
    """The signed-in staff member of a request."""

    id: int
    username: str
    display_name: str
    role: str
    via: str  # "session" | "token"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_reception(self) -> bool:
        return self.role == RECEPTION


def is_staff_path(path: str) -> bool:
    """Whether ``path`` belongs to the dashboard."""
    return path == "/staff" or path.startswith("/staff/")


def is_public_staff_path(path: str) -> bool:
    """The dashboard paths open to anyone: the sign-in page and the static assets."""
    return path == LOGIN_PATH or path.startswith(STATIC_PREFIX)


def is_api(request: web.Request) -> bool:
    """Whether the request is for the JSON API (answers are JSON, never redirects)."""
    return request.path == API_PREFIX.rstrip("/") or request.path.startswith(API_PREFIX)


#: Sent by the dashboard's scripts on fetches the event stream caused (bot/dashboard/web/static/staff/live.js).
LIVE_REFRESH_HEADER = "X-Live-Refresh"


def is_event_stream(request: web.Request) -> bool:
    """An event-stream request, or a fetch the stream caused (``X-Live-Refresh: 1``).

    Either keeps a page live but is not someone using the dashboard.
    """
    accept = request.headers.get("Accept", "")
    return "text/event-stream" in accept or request.headers.get(LIVE_REFRESH_HEADER) == "1"


def has_role(identity: StaffIdentity, role: str) -> bool:
    """Admins may do everything staff may; reception (and an unknown role) nothing staff may."""
    return ROLE_RANK.get(identity.role, -1) >= ROLE_RANK[role]


def login_url(request: web.Request, next_path: Optional[str] = None) -> str:
    """The sign-in page, with where to go afterwards when that is a plain dashboard path."""
    if next_path and next_path != LOGIN_PATH and SAFE_NEXT.match(next_path):
        return url_for(request, LOGIN_ROUTE, query={"next": next_path})
    return url_for(request, LOGIN_ROUTE)


def see_other(location: str) -> web.Response:
    """A 303 redirect (returned, not raised, so middlewares can still set cookies on it)."""
    return web.Response(status=303, headers={"Location": location})


def unauthenticated(request: web.Request) -> web.Response:
    """401 JSON for the API and token clients, otherwise a 303 to the sign-in page."""
    if is_api(request) or "Authorization" in request.headers:
        response: web.Response = web.json_response(
            {"error": "unauthenticated", "message": "Sign in, or send a valid API token."}, status=401,
            headers={"WWW-Authenticate": 'Bearer realm="staff"'},
        )
    else:
        response = see_other(login_url(request, request.path if request.method == "GET" else None))
    if COOKIE_NAME in request.cookies:
        response.del_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return response


def forbidden(request: web.Request, message: str) -> web.Response:
    """403 with a short reason, JSON for the API."""
    if is_api(request):
        return web.json_response({"error": "forbidden", "message": message}, status=403)
    return web.Response(status=403, text=f"403: {message}", content_type="text/plain")


async def identify(request: web.Request) -> Optional[StaffIdentity]:
    """The staff member behind the request's API token or session cookie, or ``None``."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        async with request.config_dict[DB]() as db, db.begin():
            user = await tokens.authenticate(db, token.strip(), clock.now())
        if user is None:
            return None
        return StaffIdentity(user.id, user.username, user.display_name, user.role.value, "token")
    await aiohttp_session.get_session(request)
    live: Optional[staff_sessions.LiveSession] = request.get(LIVE)
    if live is None:
        return None
    if not is_event_stream(request) or staff_sessions.is_unattended(live.role):
        idle = request.config_dict[SESSION_STORAGE].idle
        async with request.config_dict[DB]() as db, db.begin():
            await staff_sessions.touch(db, live, now=clock.now(), idle=idle)
    request[CSRF] = live.csrf_token
    request["staff_must_change_password"] = live.must_change_password
    return StaffIdentity(live.user_id, live.username, live.display_name, live.role, "session")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse anonymous requests under ``/staff`` (see the module docstring)."""
    if not is_staff_path(request.path) or is_public_staff_path(request.path):
        return await handler(request)
    identity = await identify(request)
    if identity is None:
        return unauthenticated(request)
    request[STAFF] = identity
    if request.get("staff_must_change_password") and request.path not in (PASSWORD_PATH, LOGOUT_PATH):
        if is_api(request):
            return forbidden(request, "Choose a new password on the dashboard first.")
        return see_other(url_for(request, PASSWORD_ROUTE))
    if identity.is_reception and not reception_may(request, identity):
        return reception_refused(request, identity)
    return await handler(request)


def route_name(request: web.Request) -> Optional[str]:
    """The name of the route the request matched (``None``: unnamed, or no route)."""
    route = getattr(request.match_info, "route", None)
    return getattr(route, "name", None)


def reception_may(request: web.Request, identity: StaffIdentity) -> bool:
    """Whether a reception account may make this request: a session, on one of :data:`RECEPTION_ROUTES`."""
    return identity.via == "session" and route_name(request) in RECEPTION_ROUTES


def reception_refused(request: web.Request, identity: StaffIdentity) -> web.Response:
    """A dashboard page asked for by a reception session goes to the display; the rest is 403."""
    if (identity.via == "session" and request.method in ("GET", "HEAD") and not is_api(request)
            and "Authorization" not in request.headers and has_route(request, DISPLAY_ROUTE)):
        return see_other(url_for(request, DISPLAY_ROUTE))
    return forbidden(request, "A reception display account sees the queue display only.")


async def submitted_csrf_token(request: web.Request) -> str:
    """The CSRF token the request carries: the header, or the form field of a form post."""
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF)
        return value if isinstance(value, str) else ""
    return ""


def tokens_match(expected: str, given: str) -> bool:
    """Constant-time comparison; an empty token never matches."""
    return bool(expected) and hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


@web.middleware
async def csrf_protect(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unsafe requests from a session must carry its CSRF token (token requests are exempt)."""
    identity: Optional[StaffIdentity] = request.get(STAFF)
    if request.method in UNSAFE_METHODS and identity is not None and identity.via == "session":
        if not tokens_match(request.get(CSRF, ""), await submitted_csrf_token(request)):
            return forbidden(request, "The form was out of date. Reload the page and try again.")
    return await handler(request)


def require_role(role: str) -> Callable[[Handler], Handler]:
    """Let only ``role`` (or a higher one) through to the handler; others get 403.

    The wrapped handler carries ``required_role``, which the route-table test reads.
    """
    if role not in REQUIRABLE_ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            identity: Optional[StaffIdentity] = request.get(STAFF)
            if identity is None:
                return unauthenticated(request)
            if not has_role(identity, role):
                return forbidden(request, "This needs an admin account.")
            return await handler(request)

        checked.required_role = role  # type: ignore[attr-defined]
        return checked

    return decorate


async def template_context(request: web.Request) -> dict[str, Any]:
    """What every template may use: the signed-in ``staff`` member, the ``csrf_token``, ``accounts_url`` (admins)."""
    identity: Optional[StaffIdentity] = request.get(STAFF)
    return {
        STAFF: identity, CSRF: request.get(CSRF, ""),
        "accounts_url": (url_for(request, ACCOUNTS_ROUTE)
                         if identity is not None and identity.is_admin and has_route(request, ACCOUNTS_ROUTE) else None),
    }


def setup(app: web.Application) -> None:
    """Install sessions, authentication, CSRF and the template context.

    The sign-in routes are :mod:`bot.dashboard.web.login`'s (it uses this module, never the reverse).
    """
    app[SESSION_STORAGE] = DatabaseStorage(app[SETTINGS])
    aiohttp_session.setup(app, app[SESSION_STORAGE])
    app.middlewares.append(authenticate)
    app.middlewares.append(csrf_protect)
    processors = list(app.get(aiohttp_jinja2.APP_CONTEXT_PROCESSORS_KEY, ()))
    if not processors:
        app.middlewares.append(aiohttp_jinja2.context_processors_middleware)
    app[aiohttp_jinja2.APP_CONTEXT_PROCESSORS_KEY] = [*processors, template_context]
