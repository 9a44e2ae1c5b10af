"""An unmodified standard Socket.IO client (socket.io-client 4 from npm) talks to the real Rasa server.

Community Rasa widgets are built on socket.io-client, which starts with HTTP
long-polling and then upgrades to a WebSocket. These tests load its published
browser bundle, unchanged, into the demo clinic page (the web app's origin is the
default allow-list) and hold a conversation with Rasa's standard events; the same
client on a page of another origin cannot connect. Needs the ``live_stack`` fixture.

Both pages are real documents served from loopback: Chromium refuses requests to
loopback from a page it cannot place on the local network (such as one fulfilled
by ``page.route``), which would hide what the Rasa server itself answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CLIENT_JS = Path(__file__).resolve().parent / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
TIMEOUT_MS = 60_000

# What a page embedding a community widget does: connect with the default options
# (polling first, then the WebSocket upgrade) and speak Rasa's socket.io events.
CONVERSE = """(server) => {
  window.seen = {bot: [], errors: [], upgrades: [], session: null};
  const socket = io(server);
  window.socket = socket;
  socket.io.on("open", () => socket.io.engine.on("upgrade", (t) => window.seen.upgrades.push(t.name)));
  socket.on("connect", () => socket.emit("session_request", {session_id: null}));
  socket.on("connect_error", (error) => window.seen.errors.push(String(error && error.message)));
  socket.on("session_confirm", (id) => {
    window.seen.session = id;
    socket.emit("user_uttered", {message: "does it hurt?", session_id: id});
  });
  socket.on("bot_uttered", (message) => window.seen.bot.push(message));
}"""


def client_js() -> bytes:
    if not CLIENT_JS.exists():
        pytest.fail(f"{CLIENT_JS} is missing: npm ci --prefix tests/browser")
    return CLIENT_JS.read_bytes()


class ForeignSite(BaseHTTPRequestHandler):
    """Another site on this machine: a blank page and the same client bundle."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/socket.io.min.js":
            body, kind = client_js(), "text/javascript"
        else:
            body, kind = b'<!doctype html><html lang="en"><title>Another site</title></html>', "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Quiet: the test reports what matters."""


@pytest.fixture
def foreign_site() -> Iterator[str]:
    """The origin of another site served from loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ForeignSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def polling_statuses(page: Page) -> list[int]:
    """Collects the status of every long-polling response the page receives."""
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "transport=polling" in r.url else None)
    return statuses


def test_standard_client_converses_over_polling_then_websocket(page: Page, live_stack):
    statuses = polling_statuses(page)
    page.goto(live_stack.web_url + "/")
    # Served from the page's own origin, as a clinic would host the script.
    page.route(live_stack.web_url + "/test-assets/socket.io.min.js", lambda route: route.fulfill(
        body=client_js(), content_type="text/javascript"
    ))
    page.add_script_tag(url=live_stack.web_url + "/test-assets/socket.io.min.js")
    page.evaluate(CONVERSE, live_stack.rasa_url)
    page.wait_for_function(
        "() => window.seen.bot.some(m => /pain|needle|twitch|ache/i.test(m.text || ''))", timeout=TIMEOUT_MS
    )
    page.wait_for_function("() => window.socket.io.engine.transport.name === 'websocket'", timeout=TIMEOUT_MS)
    seen = page.evaluate("() => window.seen")
    assert seen["errors"] == []
    assert statuses and set(statuses) == {200}, "the client did not start with HTTP long-polling"
    assert seen["upgrades"] == ["websocket"]


def test_the_same_client_on_a_foreign_origin_cannot_connect(page: Page, live_stack, foreign_site):
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(foreign_site + "/")
    page.add_script_tag(url=foreign_site + "/socket.io.min.js")
    page.evaluate(CONVERSE, live_stack.rasa_url)
    page.wait_for_function("() => window.seen.errors.length > 0", timeout=TIMEOUT_MS)
    seen = page.evaluate("() => ({...window.seen, connected: window.socket.connected})")
    assert seen["connected"] is False
    assert seen["session"] is None and seen["bot"] == []
    # The browser blocked the answer because the Rasa server granted nothing (not for any other reason).
    assert any("No 'Access-Control-Allow-Origin' header" in line for line in console), console


def test_a_websocket_from_a_foreign_origin_is_refused(page: Page, live_stack, foreign_site):
    page.goto(foreign_site + "/")
    opened = page.evaluate(
        """(server) => new Promise((resolve) => {
            const ws = new WebSocket(server.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket");
            ws.onmessage = () => resolve(true);
            ws.onerror = () => resolve(false);
        })""",
        live_stack.rasa_url,
    )
    assert opened is False
