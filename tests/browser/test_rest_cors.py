"""A real browser calls the REST webhook: allowed from the clinic's page, refused from another origin.

A JSON POST from another origin makes Chromium send a CORS preflight first. Rasa's
leftover Sanic-Cors used to answer it (no ``Access-Control-Allow-Origin``, a stray
``Access-Control-Allow-Credentials: true``), so even the clinic's own page could not
use the webhook from script. Here the REST and socket.io channels run in a Sanic app
set up and started the way Rasa starts its server (``configure_cors`` with no origins,
every start listener run), with an echoing agent instead of the model; two pages on
two loopback ports are two origins, one of them allowed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from bot.launch import free_port
from tests.channels.conftest import SOCKETIO_CREDENTIALS, EchoAgent, build_app, channel_settings
from tests.support.sanic_server import start_sanic, stop_sanic

pytestmark = pytest.mark.browser

FETCH = """async ([url, sender]) => {
  try {
    const reply = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                    body: JSON.stringify({sender: sender, message: "hello"})});
    return {status: reply.status, body: await reply.json()};
  } catch (error) {
    return {blocked: String(error)};
  }
}"""


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"<!doctype html><html lang='en'><title>clinic</title><p>page</p></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@dataclasses.dataclass
class Served:
    webhook: str
    allowed_page: str
    foreign_page: str
    agent: EchoAgent


def _page_server() -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def served() -> Iterator[Served]:
    allowed, allowed_origin = _page_server()
    foreign, foreign_origin = _page_server()
    agent = EchoAgent()
    app, _, socketio = build_app(channel_settings(cors_origins=(allowed_origin,)), agent, SOCKETIO_CREDENTIALS)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = free_port()

    async def start():
        listener = socket.socket()
        listener.bind(("127.0.0.1", port))
        # Rasa's leftover Sanic-Cors goes live in the start-up listeners, as in the real server.
        return await start_sanic(app, listener)

    async def stop(server):
        await stop_sanic(server, socketio.sio)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    try:
        yield Served(f"http://127.0.0.1:{port}/webhooks/rest/webhook", allowed_origin + "/", foreign_origin + "/", agent)
    finally:
        asyncio.run_coroutine_threadsafe(stop(server), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        allowed.shutdown()
        foreign.shutdown()


def test_the_clinics_page_can_post_json_to_the_rest_webhook(served, page):
    page.goto(served.allowed_page)

    result = page.evaluate(FETCH, [served.webhook, "browser-allowed"])

    assert result == {"status": 200, "body": [{"recipient_id": "browser-allowed", "text": "echo: hello"}]}
    assert [message.sender_id for message in served.agent.received] == ["browser-allowed"]


def test_a_page_from_another_origin_is_refused_and_its_message_never_processed(served, page):
    page.goto(served.foreign_page)

    result = page.evaluate(FETCH, [served.webhook, "browser-foreign"])

    assert "blocked" in result, result
    assert served.agent.received == []
