"""A request body the app cannot read is the client's mistake: 400 with a short reason, never a 500.

Handlers read bodies in several ways (``request.post()``, ``request.json()``,
``request.text()``), and each way can fail on input nobody sent by accident: a
truncated multipart body, a ``charset`` Python does not know or that does not fit
the bytes (``utf-16``), a ``Content-Encoding: gzip`` that is not gzip, JSON that is
not JSON or nests deeper than Python's stack. This middleware reads and checks the
body once, before authentication and the handler; aiohttp keeps what it read, so
the handler's own ``post()`` or ``json()`` gets the same result without reading
again. What it accepts:

* no body, or a body in UTF-8 (a ``charset`` other than UTF-8 or ASCII is refused);
* form bodies (``application/x-www-form-urlencoded``, ``multipart/form-data``)
  that parse whole;
* JSON bodies (``application/json`` or ``+json``) that parse;
* any other type as bytes (the handler decides whether it wants it).

The reason in the answer is fixed text, never a piece of the body.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Awaitable, Callable, Optional

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
TEXT_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
#: Longest wait for a whole body. aiohttp waits for ever on a compressed body cut short when it
#: arrives after the headers (a truncated deflate stream never reaches its end); the dashboard's
#: bodies are small forms and JSON, so a body not read by then is refused.
BODY_READ_SECONDS = 10.0
#: Failures of aiohttp's own readers on a malformed body (the multipart reader asserts on some).
UNREADABLE = (
    ValueError, LookupError, AssertionError, RecursionError, EOFError, HttpProcessingError, RequestPayloadError,
)


def is_json_type(content_type: str) -> bool:
    """``application/json`` and its ``+json`` relatives."""
    return content_type == "application/json" or (content_type.startswith("application/") and content_type.endswith("+json"))


async def body_problem(request: web.Request) -> Optional[str]:
    """Why the request's body cannot be read, or ``None`` when it can (or there is none)."""
    charset = (request.charset or "").lower()
    if charset and charset not in TEXT_CHARSETS:
        return "send text in UTF-8"
    content_type = request.content_type
    if content_type in FORM_TYPES:
        # A multipart body is parsed from the stream, so post() comes first (it keeps what it read).
        try:
            await asyncio.wait_for(request.post(), BODY_READ_SECONDS)
        except asyncio.TimeoutError:
            return "the form body did not arrive whole (check Content-Encoding and Content-Length)"
        except UNREADABLE:
            return "the form body is malformed or could not be read"
        return None
    try:
        raw = await asyncio.wait_for(request.read(), BODY_READ_SECONDS)
    except asyncio.TimeoutError:
        return "the body did not arrive whole (check Content-Encoding and Content-Length)"
    except UNREADABLE:
        return "the body could not be read (check Content-Encoding and Content-Length)"
    if is_json_type(content_type) and raw:
        try:
            json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            return "the body is not valid JSON"
    return None


def bad_request(request: web.Request, reason: str) -> web.Response:
    """400, JSON under the staff API, plain text elsewhere."""
    if request.path.startswith("/staff/api/"):
        return web.json_response({"error": "bad_request", "message": reason}, status=400)
    return web.Response(status=400, text=f"400: {reason}", content_type="text/plain")


@web.middleware
async def readable_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (400) a body that cannot be read, before anything else reads it."""
    if request.method in BODY_METHODS:  # an empty multipart body is malformed too
        problem = await body_problem(request)
        if problem:
            logger.info("refused an unreadable %s body on %s %s", request.content_type, request.method, request.path)
            return bad_request(request, problem)
    return await handler(request)
