"""Web Push in Chromium, against the real web app (issue 22): the service worker and the subscription.

Headless Chromium has no push service: ``pushManager.subscribe`` fails there with
"Registration failed - permission denied" even with notifications granted. So the page's
``PushManager`` is given a subscription whose endpoint is a local stand-in push service
(an init script), and everything else is real: alerts.js registers /staff/sw.js with the
/staff/ scope and POSTs the subscription (CSRF token and session), the web app's notifier
pushes the next urgent case to that endpoint, and the service worker, handed a push through
the DevTools protocol (``ServiceWorker.deliverPushMessage``), shows the fixed sentence with
the case link. The push's encryption and VAPID signature are checked in tests/web/test_web_push.py.

Only the web app runs (no Rasa): the urgent case is stored by the escalation service, as the
action server stores it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.settings import sync_db_url
from bot.core.store.db import create_engine as create_async_engine
from bot.core.store.db import session_factory
from bot.core.store.migrate import upgrade
from bot.core.store.models import Priority, PushSubscription, Reason, StaffUser
from bot.core.store.repository import EscalationInput
from bot.launch import Stack, free_port
from tests.browser.dashboard import STAFF, create_account, sign_in

pytestmark = [pytest.mark.browser]

FIXED_SENTENCE = "New urgent case \u2014 open the dashboard"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class StandInPushService:
    """An aiohttp server on loopback, in its own thread, recording Web Push POSTs (headers, body size)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    def endpoint(self, token: str) -> str:
        return f"http://127.0.0.1:{self.port}/push/{token}"

    async def _push(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append({"token": request.match_info["token"], "headers": dict(request.headers),
                              "size": len(body)})
        return web.Response(status=201)

    def start(self) -> "StandInPushService":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/push/{token}", self._push)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        assert ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture(scope="module")
def push_service():
    service = StandInPushService().start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def web_app(tmp_path_factory):
    """The web app alone (its notifier included) on a fresh store, with one staff account."""
    var_dir = tmp_path_factory.mktemp("var")
    env = {**os.environ, "VAR_DIR": str(var_dir), "WEB_PORT": str(free_port()), "RASA_PORT": str(free_port()),
           "ACTION_PORT": str(free_port()), "NOTIFY_INTERVAL_SECONDS": "0.5",
           "NOTIFY_FROM": "assistant@clinic.example"}
    env.pop("DATABASE_URL", None)
    stack = Stack(env=env, log_dir=Path(var_dir) / "logs")  # makes the secrets, the VAPID key too
    upgrade(stack.settings.database_url)
    create_account(stack.env, STAFF)
    stack.start("web")
    try:
        stack.wait_ready(120, "web")
        yield stack
    finally:
        stack.stop()


FAKE_PUSH_MANAGER = """
(([endpoint, p256dh, auth]) => {
  let held = null;
  window.__subscribeCalls = [];
  PushManager.prototype.subscribe = function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.__subscribeCalls.push({ userVisibleOnly: options.userVisibleOnly, key: Array.from(key) });
    held = {
      endpoint: endpoint, expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: key.buffer },
      toJSON() { return { endpoint: endpoint, expirationTime: null, keys: { p256dh: p256dh, auth: auth } }; },
      unsubscribe() { held = null; return Promise.resolve(true); },
    };
    return Promise.resolve(held);
  };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(held); };
})
"""


def subscriptions(database_url: str) -> list[tuple[str, str]]:
    engine = create_engine(sync_db_url(database_url), future=True)
    try:
        with Session(engine) as session:
            rows = session.execute(select(PushSubscription.endpoint, StaffUser.username).join(
                StaffUser, StaffUser.id == PushSubscription.user_id))
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def store_urgent_case(database_url: str, spool_dir: Path) -> str:
    async def escalate() -> str:
        engine = create_async_engine(database_url)
        try:
            service = EscalationService(session_factory(engine), Spool(spool_dir), [])
            outcome = await service.escalate(EscalationInput(
                sender_id="push-browser", channel="socketio", reason=Reason.emergency, priority=Priority.urgent,
                trigger={"matched_terms": ["chest pain"]}, transcript=[{"role": "user", "text": "chest pain"}],
            ))
            assert outcome.stored
            return outcome.escalation_id
        finally:
            await engine.dispose()

    # Playwright's sync API keeps an event loop in this thread: the store's own loop runs in another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, escalate()).result(30)


def wait_until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def test_the_dashboard_registers_its_service_worker_and_subscribes_this_browser(
    context: BrowserContext, web_app, push_service,
):
    web_url = f"http://127.0.0.1:{web_app.settings.web_port}"
    browser_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    endpoint = push_service.endpoint("browser-1")
    context.grant_permissions(["notifications"], origin=web_url)
    fake = json.dumps([endpoint, b64url(browser_key), b64url(os.urandom(16))])
    context.add_init_script(f"{FAKE_PUSH_MANAGER}({fake})")
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    registrations: list[dict] = []
    versions: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.on("ServiceWorker.workerVersionUpdated", lambda event: versions.extend(event["versions"]))
    cdp.send("ServiceWorker.enable")

    sign_in(page, web_url)

    # alerts.js registered /staff/sw.js for the whole dashboard and subscribed with the server's key.
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{web_url}/staff/"
    script = page.evaluate("navigator.serviceWorker.ready.then(r => r.active.scriptURL)")
    assert script == f"{web_url}/staff/sw.js"
    config = page.evaluate("fetch('/staff/api/push-subscriptions').then(r => r.json())")
    calls = page.evaluate("window.__subscribeCalls")
    assert len(calls) == 1 and calls[0]["userVisibleOnly"] is True
    assert b64url(bytes(calls[0]["key"])) == config["public_key"]
    # ...and POSTed the subscription, which is now the account's.
    assert wait_until(lambda: subscriptions(web_app.settings.database_url)) == [(endpoint, STAFF.username)]

    # The web app's notifier pushes the next urgent case to this browser's push service.
    case_id = store_urgent_case(web_app.settings.database_url, web_app.settings.spool_dir)
    pushed = wait_until(lambda: [p for p in push_service.received if p["token"] == "browser-1"], timeout=5)
    assert pushed[0]["headers"]["Content-Encoding"] == "aes128gcm"
    assert pushed[0]["headers"]["Authorization"].startswith("vapid t=")

    # The service worker turns a push into the fixed sentence, carrying the case link only.
    registration_id = wait_until(lambda: next(
        (r["registrationId"] for r in registrations if r["scopeURL"] == f"{web_url}/staff/" and not r["isDeleted"]),
        None))
    # A push is dispatched to an activated worker only (``ready`` may resolve while it is still activating).
    wait_until(lambda: any(v["registrationId"] == registration_id and v["status"] == "activated" for v in versions))
    cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": web_url, "registrationId": registration_id,
        "data": json.dumps({"url": f"/staff/escalations/{case_id}"}),
    })
    shown = wait_until(lambda: page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.getNotifications())"
        ".then(list => list.map(n => ({title: n.title, body: n.body, data: n.data})))"))
    assert shown == [{"title": "New urgent case", "body": FIXED_SENTENCE,
                      "data": {"url": f"/staff/escalations/{case_id}"}}]

    # A push naming anything but a case page of this origin opens the dashboard instead.
    cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": web_url, "registrationId": registration_id, "data": json.dumps({"url": "https://evil.example/x"}),
    })
    urls = wait_until(lambda: (lambda found: found if len(found) == 2 else None)(page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.getNotifications()).then(list => list.map(n => n.data.url))")))
    assert sorted(urls) == sorted([f"/staff/escalations/{case_id}", "/staff/"])
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
