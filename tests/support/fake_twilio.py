"""A local stand-in for Twilio: its Messages API, and the signed requests Twilio makes to us.

``FakeTwilio`` runs a small aiohttp app on a loopback port in a thread of its own, so
synchronous end-to-end tests and asyncio tests can both use it. It

* accepts ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with the account's
  Basic credentials, records the text that would have been sent, and answers like
  Twilio (201 with a message sid), or fails on demand (:meth:`fail_next`, or 400 with
  Twilio's code 21610 for a number in :attr:`unsubscribed`);
* sends delivery status callbacks to the ``StatusCallback`` URL, signed with
  ``RequestValidator``'s algorithm (:meth:`report`, or automatically);
* signs and posts patient texts to the channel's webhook (:func:`signed_post`).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import aiohttp
import requests
from aiohttp import web
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550006"
WHATSAPP_FROM = "+15005550007"


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """``X-Twilio-Signature`` for a POST of ``params`` to ``url``."""
    return RequestValidator(token).compute_signature(url, params)


def message_sid() -> str:
    """A fresh sid of Twilio's form (``SM`` and 32 hex digits)."""
    return "SM" + secrets.token_hex(16)


def inbound(sender: str, body: Optional[str], *, to: str = FROM_NUMBER, sid: Optional[str] = None,
            media: int = 0, **extra: str) -> dict[str, str]:
    """The form fields Twilio posts for a patient's text."""
    params = {"MessageSid": sid or message_sid(), "AccountSid": ACCOUNT_SID, "From": sender, "To": to,
              "NumMedia": str(media), **extra}
    if body is not None:
        params["Body"] = body
    for index in range(media):
        params[f"MediaUrl{index}"] = f"https://api.twilio.com/media/{index}"
        params[f"MediaContentType{index}"] = "image/jpeg"
    return params


def signed_post(url: str, params: dict[str, str], *, public_url: Optional[str] = None,
                token: str = AUTH_TOKEN, signature: Optional[str] = "sign") -> requests.Response:
    """POST ``params`` form-encoded to ``url`` as Twilio would, signed for ``public_url`` (default: ``url``)."""
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = sign(public_url or url, params, token)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    return requests.post(url, data=params, headers=headers, timeout=60)


@dataclass
class Sent:
    """One text the fake accepted."""

    sid: str
    to: str
    sender: str
    body: Optional[str]
    content_sid: Optional[str]
    status_callback: Optional[str]
    at: float = field(default_factory=time.monotonic)


class FakeTwilio:
    """Twilio's Messages API on loopback, recording what would be sent."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN,
                 auto_deliver: bool = False) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.auto_deliver = auto_deliver
        self.sent: list[Sent] = []
        #: Every request to the Messages API, accepted or not (form fields).
        self.requests: list[dict[str, str]] = []
        self.unsubscribed: set[str] = set()
        self.callbacks: list[tuple[str, dict[str, str], int]] = []
        self._failures: list[tuple[int, Optional[int]]] = []
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self.port = 0

    # ---- control -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``TWILIO_API_BASE_URL`` for the code under test."""
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, times: int = 1, status: int = 500, code: Optional[int] = None) -> None:
        """Answer the next ``times`` sends with HTTP ``status`` (and Twilio error ``code``)."""
        with self._lock:
            self._failures.extend([(status, code)] * times)

    def bodies(self, to: Optional[str] = None) -> list[str]:
        """Texts accepted so far (to one address, if given), in order."""
        with self._lock:
            return [s.body or f"[template {s.content_sid}]" for s in self.sent if to is None or s.to == to]

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()
            self.requests.clear()
            self.callbacks.clear()
            self._failures.clear()

    def report(self, sid: str, status: str, error_code: Optional[str] = None, url: Optional[str] = None) -> int:
        """Send a signed status callback for text ``sid``; returns the HTTP status it got."""
        with self._lock:
            sent = next((s for s in self.sent if s.sid == sid), None)
        target = url or (sent.status_callback if sent else None)
        if not target:
            raise AssertionError(f"no status callback URL for {sid}")
        future = asyncio.run_coroutine_threadsafe(self._callback(target, sid, status, error_code), self._loop)
        return future.result(timeout=30)

    async def report_async(self, sid: str, status: str, error_code: Optional[str] = None) -> int:
        """:meth:`report` for a test whose own event loop serves the callback's target."""
        with self._lock:
            sent = next((s for s in self.sent if s.sid == sid), None)
        if sent is None or not sent.status_callback:
            raise AssertionError(f"no status callback URL for {sid}")
        future = asyncio.run_coroutine_threadsafe(
            self._callback(sent.status_callback, sid, status, error_code), self._loop
        )
        return await asyncio.wrap_future(future)

    # ---- lifetime ----------------------------------------------------------------------------------

    def start(self) -> "FakeTwilio":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-twilio", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Twilio did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    # ---- the API -----------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == expected and request.match_info["account"] == self.account_sid

    async def _messages(self, request: web.Request) -> web.Response:
        form = {key: value for key, value in (await request.post()).items()}
        with self._lock:
            self.requests.append(form)
            failure = self._failures.pop(0) if self._failures else None
        if not self._authorised(request):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        if failure is not None:
            status, code = failure
            return web.json_response({"code": code, "message": "failing on demand", "status": status}, status=status)
        to = form.get("To", "")
        if to in self.unsubscribed:
            return web.json_response(
                {"code": 21610, "message": f"Attempt to send to unsubscribed recipient {to}", "status": 400},
                status=400,
            )
        if not to or not (form.get("Body") or form.get("ContentSid")):
            return web.json_response({"code": 21602, "message": "Message body is required.", "status": 400}, status=400)
        if len(form.get("Body") or "") > 1600:
            return web.json_response({"code": 21617, "message": "The concatenated message body exceeds the 1600 character limit.", "status": 400}, status=400)
        sent = Sent(
            sid=message_sid(), to=to, sender=form.get("From") or form.get("MessagingServiceSid", ""),
            body=form.get("Body"), content_sid=form.get("ContentSid"), status_callback=form.get("StatusCallback"),
        )
        with self._lock:
            self.sent.append(sent)
        if self.auto_deliver and sent.status_callback:
            asyncio.get_running_loop().create_task(self._callback(sent.status_callback, sent.sid, "delivered", None))
        return web.json_response(
            {"sid": sent.sid, "status": "queued", "to": to, "body": sent.body, "account_sid": self.account_sid},
            status=201,
        )

    async def _callback(self, url: str, sid: str, status: str, error_code: Optional[str]) -> int:
        params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                  "AccountSid": self.account_sid}
        if error_code:
            params["ErrorCode"] = error_code
        headers = {"X-Twilio-Signature": sign(url, params, self.auth_token)}
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=params, headers=headers) as reply:
                with self._lock:
                    self.callbacks.append((sid, params, reply.status))
                return reply.status


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` (synchronously) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
