"""The Rasa process's two doors: patients on ``RASA_PORT``, the staff bridges on loopback ``STAFF_BRIDGE_PORT``.

The staff bridges (``/webhooks/staff_bridge/…`` for the web chat, ``/webhooks/twilio/staff/…``
for texts) are channels of the Rasa process because it owns the patients' sockets and
conversations; but they are for the web app on the same machine, never for the
internet. They used to share the patient-facing port, so a reverse proxy that
forwarded that port whole (as the deploy guide did) exposed them, guarded by the
bridge secret alone. Now:

* the same Sanic app listens a second time, on ``127.0.0.1:STAFF_BRIDGE_PORT``
  whatever ``BIND_HOST`` is (started after the patient-facing server, stopped before
  it; a port already taken stops the process, so the launcher or systemd says so);
* one request middleware, first in the chain, routes by the port a request came in
  on: the staff routes answer only there, and that port answers nothing else. Both
  refusals are a plain 404, as for a path that does not exist;
* Rasa's ``/`` answers ``{"status": "ok"}`` instead of "Hello from Rasa: <version>",
  which told every scanner the product and its version.

The bridges keep their secret header (``X-Bridge-Secret``): the port is a second wall,
not the only one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: How long stopping waits for the web app's open calls before cutting them.
STOP_SECONDS = 3.0
STAFF_PREFIXES = ("/webhooks/staff_bridge/", "/webhooks/twilio/staff/")


def is_staff_path(path: str) -> bool:
    """Whether ``path`` is one of the staff bridges' routes."""
    return path.startswith(STAFF_PREFIXES) or path.rstrip("/") in {prefix.rstrip("/") for prefix in STAFF_PREFIXES}


def not_found() -> HTTPResponse:
    return response.json({"error": "not_found"}, status=404)


@dataclass
class StaffListener:
    """The loopback listener for the staff bridges, and the middleware that keeps the two ports apart."""

    port: int
    host: str = LOOPBACK
    server: Optional[Any] = field(default=None, repr=False)

    def listeners(self) -> list[tuple[Any, str]]:
        """The server listeners that do it all (for ``serve_application(server_listeners=...)``)."""
        return [(self.route_first, "before_server_start"), (self.start, "after_server_start"),
                (self.stop, "before_server_stop")]

    def install(self, app: Sanic) -> None:
        """Register :meth:`listeners` on an app that has not started yet."""
        for listener, event in self.listeners():
            app.register_listener(listener, event)

    async def route_first(self, app: Sanic, _loop: Any = None) -> None:
        """Put :meth:`route_by_port` first in the request middleware: nothing else (CORS, rate limits)
        should see a request meant for the other door."""
        if self.route_by_port in app.request_middleware:
            app.request_middleware.remove(self.route_by_port)
        app.request_middleware.appendleft(self.route_by_port)

    def on_staff_port(self, request: Request) -> bool:
        """Whether the request came in on the staff listener."""
        info = getattr(request, "conn_info", None)
        return info is not None and info.server_port == self.port and self.server is not None

    async def route_by_port(self, request: Request) -> Optional[HTTPResponse]:
        """Staff routes on the staff port only, and nothing else there; ``/`` says only that it is up."""
        staff_port = self.on_staff_port(request)
        if is_staff_path(request.path) != staff_port:
            return not_found()
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return response.json({"status": "ok"})
        return None

    async def start(self, app: Sanic, _loop: Any) -> None:
        """Listen on ``host:port`` with the same app (its routes, middleware, agent and channels)."""
        await self.route_first(app)  # again: other extensions add theirs before the server starts
        if self.port == getattr(app.state, "port", None):
            raise RuntimeError("STAFF_BRIDGE_PORT must differ from RASA_PORT: the staff bridges never share it")
        before = (app.state.host, app.state.port)  # create_server records its own address there
        # Awaiting create_server binds the socket and starts serving (asyncio's start_serving default).
        self.server = await app.create_server(host=self.host, port=self.port, return_asyncio_server=True,
                                              access_log=False)
        app.state.host, app.state.port = before
        logger.info("staff bridges listening on %s:%s (loopback only)", self.host, self.port)

    async def stop(self, _app: Sanic, _loop: Any) -> None:
        """Stop listening, and close the web app's open connections."""
        if self.server is None:
            return
        server, self.server = self.server, None
        server.close()
        for connection in list(server.connections):
            connection.close_if_idle()
        try:
            # A keep-alive or half-finished call would hold wait_closed open: give it a moment, then cut it.
            await asyncio.wait_for(server.wait_closed(), STOP_SECONDS)
        except asyncio.TimeoutError:
            for connection in list(server.connections):
                connection.abort()
