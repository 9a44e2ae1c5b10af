"""The web app's client of the Rasa server's staff routes (one protocol for every channel).

The Rasa process listens for staff on a loopback-only port (``STAFF_BRIDGE_URL``) and serves
one set of routes per channel (:mod:`bot.assistant.channels.staff_bridge`): ``POST
<base><path><operation>`` with ``X-Bridge-Secret`` and ``{"sender_id", "line_id"}``, where the
operation is ``takeover``, ``message``, ``handback`` (and ``presence`` for the web chat). A
channel's bridge is this class with its ``path``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Bridge-Secret"


class BridgeUnavailable(Exception):
    """The Rasa server did not answer the bridge call usefully."""


@dataclass(frozen=True)
class BridgeAnswer:
    """A bridge call's HTTP status and JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def error(self) -> str:
        return str(self.body.get("error") or "")


class Bridge:
    """Client of one channel's staff routes on the Rasa server (``path`` set by each channel's subclass)."""

    path = "/"

    def __init__(self, http: aiohttp.ClientSession, base_url: str, secret: str, timeout: float = 10.0) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + self.path
        self.secret = secret
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(self, operation: str, body: dict[str, Any]) -> BridgeAnswer:
        """POST ``body`` to ``operation``; 4xx answers are returned, anything else raises :class:`BridgeUnavailable`."""
        try:
            async with self.http.post(
                self.url + operation, json=body, headers={SECRET_HEADER: self.secret}, timeout=self.timeout,
                allow_redirects=False,
            ) as reply:
                try:
                    data = await reply.json(content_type=None)
                except ValueError:
                    data = {}
                status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise BridgeUnavailable(type(exc).__name__) from None
        if status >= 500 or status in (401, 403) or not isinstance(data, dict):
            logger.error("staff bridge %s%s answered %s", self.path, operation, status)
            raise BridgeUnavailable(f"status {status}")
        return BridgeAnswer(status, data)
