"""Local SMTP server and webhook receiver that record what staff notifications deliver."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from typing import Any, Optional

from aiohttp import web
from aiosmtpd.controller import Controller

from bot.launch import free_port


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


class SMTPServer:
    """A real SMTP server on loopback (aiosmtpd) collecting messages."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mailbox = _Mailbox()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        return self.mailbox.messages

    def start(self) -> "SMTPServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class WebhookReceiver:
    """An aiohttp server on loopback, in its own thread, recording POSTed JSON."""

    status: int = 200
    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _runner: Optional[web.AppRunner] = None
    _thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.headers.append(dict(request.headers))
        self.received.append(json.loads(body))
        return web.Response(status=self.status)

    def start(self) -> "WebhookReceiver":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
