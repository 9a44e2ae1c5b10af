"""A standard python-socketio client speaking Rasa's socket.io events, for channel and end-to-end tests."""

from __future__ import annotations

import asyncio

import socketio


class Patient:
    """A standard socket.io client on the polling transport, collecting what the server sends it."""

    def __init__(self, timeout: float = 5) -> None:
        self.timeout = timeout
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue = asyncio.Queue()
        self.client.on("session_confirm", lambda data: self.events.put_nowait(("session_confirm", data)))
        self.client.on("bot_uttered", lambda data: self.events.put_nowait(("bot_uttered", data)))

    async def connect(self, url: str, origin: str) -> "Patient":
        await self.client.connect(url, headers={"Origin": origin}, transports=["polling"])
        return self

    async def next(self, expected: str):
        """The next event the server sent, which must be ``expected``."""
        event, data = await asyncio.wait_for(self.events.get(), self.timeout)
        assert event == expected, (event, data)
        return data

    async def start(self, session_id=None) -> str:
        """Ask for a session (``session_id``: one to resume); return the id the server confirms."""
        await self.client.emit("session_request", {"session_id": session_id})
        return await self.next("session_confirm")

    async def say(self, text: str, session_id: str, **extra) -> None:
        """Send a patient message in ``session_id``."""
        await self.client.emit("user_uttered", {"message": text, "session_id": session_id, **extra})

    async def leave(self) -> None:
        """Disconnect without waiting for the pending long-poll request to time out."""
        engine = self.client.eio
        loops = [task for task in (engine.read_loop_task, engine.write_loop_task) if task is not None]
        await engine.disconnect(abort=True)
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    async def quiet(self, seconds: float = 0.5) -> bool:
        """Whether nothing arrives for ``seconds``."""
        await asyncio.sleep(seconds)
        return self.events.empty()
