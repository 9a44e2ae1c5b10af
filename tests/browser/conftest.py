"""Browser test fixtures: Debian Chromium driven by Playwright's sync API.

Two kinds of page:
- ``demo_chat``: the project's real demo page, served by the ``live_stack`` fixture
  (web app + Rasa + action server) from ``tests/conftest.py``.
- ``stub_chat``: the widget on a page served by Playwright itself, talking to
  :class:`FakeRasa`, a scripted socket.io server built on WebSocket routing. It tests
  the widget's protocol handling and rendering without starting any process.

axe-core comes from ``npm install --prefix tests/browser`` (package.json pins it).
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
WIDGET_DIR = REPO_ROOT / "bot" / "dashboard" / "web" / "static" / "widget"
AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
STUB_ORIGIN = "http://clinic.test"
STUB_RASA = "http://rasa.test"

expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One headless Debian Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (empty sessionStorage) per test."""
    ctx = chromium.new_context(viewport=DESKTOP, locale="en-GB")
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A blank tab in the test's browser profile."""
    return context.new_page()


class Chat:
    """The widget on a page, seen the way a patient sees it."""

    def __init__(self, page: Page):
        self.page = page
        self.launcher = page.locator(".cw-launcher")
        self.panel = page.locator("#cw-panel")
        self.log = page.locator(".cw-log")
        self.input = page.locator(".cw-input")
        self.bot = page.locator(".cw-log .cw-bot .cw-bubble")
        self.user = page.locator(".cw-log .cw-user .cw-bubble")
        self.replies = page.locator(".cw-log .cw-reply")
        self.banner = page.locator(".cw-offline")

    def open(self) -> Chat:
        """Open the panel with the launcher."""
        self.launcher.click()
        expect(self.panel).to_be_visible()
        return self

    def send(self, text: str) -> None:
        """Type ``text`` and press Enter."""
        self.input.fill(text)
        self.input.press("Enter")

    def state(self) -> str:
        """The connection state the widget shows: connecting, online or offline."""
        return self.page.locator(".cw").get_attribute("data-state") or ""

    def stored(self, storage: str = "sessionStorage") -> dict | None:
        """The conversation the widget keeps in browser storage."""
        return self.page.evaluate(
            f"() => {{ const k = Object.keys({storage}).find(k => k.startsWith('chat-widget:'));"
            f" return k ? JSON.parse({storage}.getItem(k)) : null; }}"
        )

    def axe_violations(self) -> list[dict]:
        """Run axe-core on the whole page and return its violations."""
        if not AXE_JS.exists():
            pytest.fail(f"{AXE_JS} is missing: npm install --prefix tests/browser")
        # Evaluated, not added as a <script>: the page's CSP rightly blocks injected inline scripts.
        self.page.evaluate(AXE_JS.read_text(encoding="utf-8"))
        return self.page.evaluate("async () => (await axe.run(document)).violations")


@pytest.fixture
def demo_chat(page: Page, live_stack) -> Chat:
    """The real demo clinic page, with the widget talking to the real Rasa server."""
    page.goto(live_stack.web_url + "/")
    expect(page.locator(".cw-launcher")).to_be_visible()
    return Chat(page)


class FakeRasa:
    """A scripted stand-in for Rasa's socketio channel (Engine.IO 4 / Socket.IO 5 frames).

    ``reply(message)`` returns the ``bot_uttered`` payloads to send back for a user message.
    """

    def __init__(self, page: Page, reply: Callable[[str], list] | None = None, confirm: bool = True):
        self.reply = reply or (lambda message: [])
        self.confirm = confirm
        self.received: list[tuple[str, object]] = []
        self.frames: list[str] = []
        self.sockets: list[WebSocketRoute] = []
        self._sessions = 0
        self._page = page
        page.route_web_socket(re.compile(r"^ws://rasa\.test/socket\.io/"), self._accept)

    def _accept(self, ws: WebSocketRoute) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda frame: self._on_frame(ws, frame))
        opening = {"sid": f"e{len(self.sockets)}", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000}
        ws.send("0" + json.dumps(opening))

    def _on_frame(self, ws: WebSocketRoute, frame) -> None:
        frame = frame if isinstance(frame, str) else frame.decode()
        self.frames.append(frame)
        if frame == "40":
            ws.send("40" + json.dumps({"sid": f"s{len(self.sockets)}"}))
        elif frame.startswith("42"):
            name, data = json.loads(frame[2:])
            self.received.append((name, data))
            if name == "session_request" and self.confirm:
                self._sessions += 1
                self.emit("session_confirm", data.get("session_id") or f"session-{self._sessions}", ws)
            elif name == "user_uttered":
                for message in self.reply(data["message"]):
                    self.emit("bot_uttered", message, ws)

    def emit(self, event: str, data: object, ws: WebSocketRoute | None = None) -> None:
        """Send a Socket.IO event to the widget (on the newest connection by default)."""
        (ws or self.sockets[-1]).send("42" + json.dumps([event, data]))

    def until(self, predicate: Callable[[], bool], timeout_ms: int = 5000) -> None:
        """Let the page run until ``predicate()`` holds; fail after ``timeout_ms``."""
        for _ in range(timeout_ms // 50):
            if predicate():
                return
            self._page.wait_for_timeout(50)
        assert predicate(), "the fake Rasa server did not see what the test waited for"

    def events(self, name: str) -> list:
        """The payloads of every ``name`` event the widget has sent."""
        return [data for event, data in self.received if event == name]


def stub_html(**data: str) -> str:
    """A minimal host page embedding the widget with the given data-* attributes."""
    attrs = {"server-url": STUB_RASA, "clinic-name": "Test Physio", **{k.replace("_", "-"): v for k, v in data.items()}}
    rendered = " ".join(f'data-{key}="{escape(value)}"' for key, value in attrs.items())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test clinic</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body><main><h1>Test clinic</h1><p><a href="#x">A link on the page</a></p></main>'
        f'<script src="/static/widget/chat-widget.js" {rendered}></script></body></html>'
    )


@pytest.fixture
def fake_rasa(page: Page) -> FakeRasa:
    """A scripted Rasa socketio server for ``page``; set ``.reply`` to script answers."""
    return FakeRasa(page)


@pytest.fixture
def stub_chat(page: Page, fake_rasa: FakeRasa) -> Callable[..., Chat]:
    """Load a page embedding the widget (data-* attributes as keyword arguments)."""
    pages = {"html": stub_html()}

    def serve(route) -> None:
        path = route.request.url[len(STUB_ORIGIN):].split("?")[0]
        if path in ("/", ""):
            route.fulfill(body=pages["html"], content_type="text/html")
            return
        prefix = "/static/widget/"
        target = (WIDGET_DIR / path[len(prefix):]).resolve() if path.startswith(prefix) else None
        if target and target.is_file() and WIDGET_DIR in target.parents:
            route.fulfill(path=str(target), content_type=mimetypes.guess_type(target.name)[0])
        else:
            route.fulfill(status=404, body="not found")

    page.route(STUB_ORIGIN + "/**", serve)

    def load(**data: str) -> Chat:
        pages["html"] = stub_html(**data)
        page.goto(STUB_ORIGIN + "/")
        expect(page.locator(".cw-launcher")).to_be_visible()
        return Chat(page)

    return load
