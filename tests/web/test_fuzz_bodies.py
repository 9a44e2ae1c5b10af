"""Fuzz every route of the web app with malformed and random bodies: no answer is ever >= 500.

The app runs on a real socket (in a thread with its own event loop), and requests go
out raw (:mod:`tests.support.malformed`), as four callers: anonymous, a staff
member's session and an admin's (with their CSRF token, so bodies get past the CSRF
check to the handlers), and an admin's API token. Every route gets the fixed list of
malformed bodies; hypothesis then draws routes, callers and bodies. Left out: the
event stream (it never ends by design) and, for the two sessions, sign-out and the
password change (a fuzzed wrong current password would lock the account and end
the session the rest of the run needs; anonymous and token callers still reach them).
The user id in paths is an account made to be reset, disabled and demoted.
"""

from __future__ import annotations

import asyncio
import re
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Iterator, Optional

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.settings import Settings
from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import upgrade
from bot.core.store.models import StaffRole
from bot.dashboard.staff import accounts, tokens
from bot.dashboard.web.app import create_app
from bot.launch import free_port
from tests.support.cases import add_case
from tests.support.malformed import MALFORMED, Tally, bodies, send
from tests.web.routes import Route, walk

PASSWORD = "correct horse battery staple"
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
NEVER_ENDS = "/staff/api/events"
ENDS_THE_SESSION = ("/staff/logout", "/staff/account/password")
TALLY = Tally()


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]

    @property
    def session(self) -> bool:
        return "Cookie" in self.headers


class ServedApp:
    """The web app on a loopback port, served by a thread's own event loop."""

    def __init__(self, app: web.Application, bridge_port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(app, access_log=None)
        self.bridge = web.AppRunner(fake_bridge(), access_log=None)
        self.port = 0
        self.bridge_port = bridge_port

    def start(self) -> "ServedApp":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    async def _start(self) -> None:
        self.port = await _serve(self.runner)
        await _serve(self.bridge, self.bridge_port)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        asyncio.run_coroutine_threadsafe(self.bridge.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def _serve(runner: web.AppRunner, port: int = 0) -> int:
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return site._server.sockets[0].getsockname()[1]


def fake_bridge() -> web.Application:
    """Stands in for the Rasa process's staff bridges: every call is answered as delivered-or-kept."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"paused": True, "delivered": False, "connected": False, "known": True, "queued": 1})

    app = web.Application()
    app.router.add_post("/{operation:.*}", answer)
    return app


def _cookie(headers: dict[str, str], name: str) -> str:
    for value in headers.get("set-cookie", "").split(","):
        match = re.search(rf"{name}=([^;]+)", value)
        if match:
            return match.group(1)
    return ""


def _sign_in(port: int, username: str) -> Caller:
    _, headers, page = send("127.0.0.1", port, "GET", "/staff/login", {}, b"")
    token = FORM_TOKEN.search(page.decode()).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "username": username, "password": PASSWORD}).encode()
    status, headers, _ = send("127.0.0.1", port, "POST", "/staff/login",
                              {"Content-Type": "application/x-www-form-urlencoded",
                               "Cookie": f"staff_login={_cookie(headers, 'staff_login')}"}, form)
    assert status == 303
    cookie = f"staff_session={_cookie(headers, 'staff_session')}"
    _, _, me = send("127.0.0.1", port, "GET", "/staff/api/me", {"Cookie": cookie}, b"")
    csrf = re.search(rb'"csrf_token": "([^"]+)"', me).group(1).decode()
    return Caller(username, {"Cookie": cookie, "X-CSRF-Token": csrf})


async def _arrange(db_url: str) -> tuple[str, str]:
    engine = create_engine(db_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            await accounts.create_user(session, "target", PASSWORD, actor="test")  # id 1: the paths' user id
            await accounts.create_user(session, "sam", PASSWORD, actor="test")
            ada = await accounts.create_user(session, "ada", PASSWORD, role=StaffRole.admin, actor="test")
            token, _ = await tokens.issue(session, ada, "fuzz", actor="test")
        case_id = await add_case(sessions, channel="socketio")
        return token, str(getattr(case_id, "id", case_id))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[ServedApp, list[Caller], list[Route]]]:
    folder = tmp_path_factory.mktemp("fuzz")
    db_url = f"sqlite:///{folder / 'store.db'}"
    upgrade(db_url)
    token, case_id = asyncio.run(_arrange(db_url))
    bridge_port = free_port()
    settings_ = Settings(
        var_dir=folder / "var", database_url=db_url, public_web_url="http://127.0.0.1:8000",
        session_secret="fuzz-session-secret", staff_bridge_secret="fuzz",
        staff_bridge_url=f"http://127.0.0.1:{bridge_port}", notify_interval_seconds=3600,
    )
    app = create_app(settings_)
    routes = [_with_case(route, case_id) for route in walk(app)]
    served_app = ServedApp(app, bridge_port).start()
    try:
        callers = [Caller("anonymous", {}), _sign_in(served_app.port, "sam"), _sign_in(served_app.port, "ada"),
                   Caller("token", {"Authorization": f"Bearer {token}"})]
        yield served_app, callers, [route for route in routes if route.template != NEVER_ENDS]
    finally:
        served_app.stop()
        print("\n" + TALLY.summary("web app fuzz"))


def _with_case(route: Route, case_id: str) -> Route:
    return Route(route.method, route.template, route.path.replace("6f1c1f7e-2a4b-4c8e-9d3f-0a1b2c3d4e5f", case_id),
                 route.handler)


def _reaches(route: Route, caller: Caller) -> bool:
    return not (caller.session and route.path in ENDS_THE_SESSION)


def _request(port: int, route: Route, caller: Caller, headers: dict[str, str], body: bytes) -> int:
    status, _, text = send("127.0.0.1", port, route.method, route.path, {**caller.headers, **headers}, body)
    TALLY.record(status, f"{route.method} {route.path} as {caller.name} with {headers}")
    assert b"Traceback" not in text
    return status


def test_every_malformed_body_on_every_route_and_for_every_caller_is_answered_below_500(served):
    served_app, callers, routes = served
    answered: dict[str, set[int]] = {}
    for route in routes:
        # A staff member's session goes where an admin's does; GET and HEAD read no body, so a few cases do.
        cases = MALFORMED if route.method not in ("GET", "HEAD") else MALFORMED[::8]
        for caller in (callers[0], callers[2], callers[3]):
            if not _reaches(route, caller):
                continue
            for what, headers, body in cases:
                status = _request(served_app.port, route, caller, headers, body)
                answered.setdefault(what, set()).add(status)

    assert not TALLY.server_errors, sorted({error.split(" with ")[0] for error in TALLY.server_errors})
    # The named cases are refused as bad requests where a staff route reads them.
    for what in ("truncated multipart", "form in utf-16", "bogus gzip JSON", "invalid JSON", "unknown charset"):
        assert 400 in answered[what], (what, answered[what])


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_bodies_on_random_routes_are_answered_below_500(served, data):
    served_app, callers, routes = served
    route = data.draw(st.sampled_from(routes), label="route")
    caller = data.draw(st.sampled_from([caller for caller in callers if _reaches(route, caller)]), label="caller")
    headers, body = data.draw(bodies(), label="body")

    status = _request(served_app.port, route, caller, headers, body)

    assert status < 500, (route.method, route.path, caller.name, headers, body[:200])


def test_a_malformed_sign_in_or_api_body_gets_a_400_that_says_why_and_echoes_nothing(served):
    served_app, callers, _ = served
    admin = callers[2]
    cases = [("POST", "/staff/login", {}, {"Content-Type": "multipart/form-data; boundary=XyZfuzz"},
              b'--XyZfuzz\r\nContent-Disposition: form-data; name="username"\r\n\r\nsecret-canary'),
             ("POST", "/staff/api/users", admin.headers, {"Content-Type": "application/json", "Content-Encoding": "gzip"},
              b"secret-canary"),
             ("POST", "/staff/api/escalations/search", admin.headers,
              {"Content-Type": "application/x-www-form-urlencoded; charset=utf-16"}, "q=secret-canary".encode("utf-16"))]
    for method, path, caller_headers, headers, body in cases:
        status, reply_headers, text = send("127.0.0.1", served_app.port, method, path, {**caller_headers, **headers}, body)
        assert status == 400, (path, status, text)
        assert b"secret-canary" not in text and b"Traceback" not in text
        if path.startswith("/staff/api/"):
            assert reply_headers["content-type"].startswith("application/json")
