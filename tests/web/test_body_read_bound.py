"""A compressed body cut short, arriving after the headers, is refused in bounded time (never a hung connection)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.dashboard.web import bodies

HEAD = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Encoding: deflate\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n")


async def _served(monkeypatch) -> web.AppRunner:
    monkeypatch.setattr(bodies, "BODY_READ_SECONDS", 1.0)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text="read")

    app = web.Application(middlewares=[bodies.readable_bodies])
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def _split_send(port: int, content_type: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD % content_type)
    await writer.drain()
    await asyncio.sleep(0.2)  # the body in its own segment: the case aiohttp waits on for ever
    writer.write(b"\x00\x01")
    await writer.drain()
    async def answer() -> bytes:
        received = b""
        while not (b"\r\n\r\n" in received and received.endswith(b"whole (check Content-Encoding and Content-Length)")):
            chunk = await reader.read(1000)
            if not chunk:
                break
            received += chunk
        return received

    try:
        return await asyncio.wait_for(answer(), 5)
    finally:
        writer.close()


async def test_a_truncated_deflate_body_after_the_headers_gets_a_400_not_a_hang(monkeypatch):
    runner = await _served(monkeypatch)
    try:
        port = runner.addresses[0][1]
        for content_type in (b"application/json", b"application/x-www-form-urlencoded"):
            answer = await _split_send(port, content_type)
            assert answer.startswith(b"HTTP/1.1 400"), answer
            assert b"did not arrive whole" in answer
    finally:
        await runner.cleanup()
