"""A Sanic app (Rasa's channels) served on a real socket in a test, started and stopped the
way Rasa's server does it: every listener runs, so Sanic-Cors, the channels' start-up hooks
and the staff port are live as in production."""

from __future__ import annotations

import socket
from typing import Any


async def start_sanic(app: Any, listener: socket.socket, serving: bool = False) -> Any:
    """Serve ``app`` on ``listener`` with its start-up listeners run (``serving``: accept
    connections before the after-start listeners, as Rasa's server does)."""
    server = await app.create_server(sock=listener, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    if serving:
        await server.start_serving()
    await server.after_start()
    return server


async def stop_sanic(server: Any, sio: Any) -> None:
    """Shut the socket.io server and the Sanic server down with their stop listeners run."""
    await sio.shutdown()
    await server.before_stop()
    server.close()
    for connection in list(server.connections):
        connection.close()
    await server.wait_closed()
    await server.after_stop()
