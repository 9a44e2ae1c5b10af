"""A web app whose /healthz reports "degraded" (503) has started: the launcher must not wait for it forever."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from bot.launch import Service, Stack


class Degraded(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = json.dumps({"status": "degraded", "problems": ["urgent_escalation_untold"]}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return


@pytest.fixture
def degraded_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Degraded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    finally:
        server.shutdown()
        server.server_close()


def stack_with(tmp_path, name: str, url: str) -> Stack:
    stack = Stack(env={"VAR_DIR": str(tmp_path)})
    stack.services = {name: Service(name, [sys.executable, "-c", "import time; time.sleep(60)"], url)}
    stack.start(name)
    return stack


def test_a_degraded_web_app_counts_as_started(tmp_path, degraded_url, caplog):
    stack = stack_with(tmp_path, "web", degraded_url)
    try:
        stack.wait_ready(10)
    finally:
        stack.stop()

    assert "web answers but reports degraded health" in caplog.text


def test_another_service_answering_503_is_not_ready(tmp_path, degraded_url):
    stack = stack_with(tmp_path, "actions", degraded_url)
    try:
        with pytest.raises(TimeoutError):
            stack.wait_ready(1.5)
    finally:
        stack.stop()
