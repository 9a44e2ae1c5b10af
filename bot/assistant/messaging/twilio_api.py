"""Sending one text through Twilio's REST API (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

A plain aiohttp call, so it runs in the Rasa process (aiohttp 3.9) and in the web app
alike, and tests point ``TWILIO_API_BASE_URL`` at a local fake. Twilio's answer decides
what happens next: accepted (its message sid is kept for the delivery callbacks), worth
retrying (429, 5xx, no answer), or refused for good (any other 4xx: a number that
opted out, an invalid number, free text outside WhatsApp's window...).

Twilio's error messages may quote the number, so only the error code ever reaches a
log line or the audit log; the message is kept with the text in the store.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from bot.core.messaging.addresses import WHATSAPP, Address
from bot.core.settings import Settings

API_VERSION = "2010-04-01"
#: Longest wait for Twilio's answer to one send.
SEND_TIMEOUT_SECONDS = 20.0
#: Twilio: "Attempt to send to unsubscribed recipient" (the number texted STOP to Twilio itself).
UNSUBSCRIBED = "21610"


class SendError(Exception):
    """Twilio did not accept a text: ``permanent`` when sending it again cannot help."""

    def __init__(self, message: str, *, permanent: bool, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True)
class Accepted:
    """Twilio took the text: its message sid and first status (``queued``, ``accepted``...)."""

    sid: str
    status: str


def status_callback_url(webhook_url: str, row_id: Optional[int] = None) -> str:
    """Where Twilio reports delivery: the channel's ``/status`` beside its public ``/webhook`` URL.

    ``ref`` is our own id of the text (never patient data), so a callback that arrives
    before the send's answer was recorded still finds its text.
    """
    parts = urlsplit(webhook_url)
    path = parts.path[: -len("/webhook")] if parts.path.endswith("/webhook") else parts.path.rstrip("/")
    query = f"ref={row_id}" if row_id is not None else ""
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/status", query, ""))


class TwilioApi:
    """Twilio's Messages resource, with the account's credentials and senders from the settings."""

    def __init__(self, settings: Settings, http: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.http = http

    @property
    def messages_url(self) -> str:
        """The Messages resource of the account."""
        s = self.settings
        return f"{s.twilio_api_base_url}/{API_VERSION}/Accounts/{s.twilio_account_sid}/Messages.json"

    def sender_fields(self, kind: str) -> dict[str, str]:
        """``From`` (or ``MessagingServiceSid``) for a text on ``kind`` (sms or whatsapp)."""
        s = self.settings
        if kind == WHATSAPP:
            if s.twilio_whatsapp_from:
                number = s.twilio_whatsapp_from
                return {"From": number if number.startswith("whatsapp:") else f"whatsapp:{number}"}
        elif s.twilio_from_number:
            return {"From": s.twilio_from_number}
        if s.twilio_messaging_service_sid:
            return {"MessagingServiceSid": s.twilio_messaging_service_sid}
        raise SendError(f"no {kind} sender configured", permanent=True, code="no_sender")

    async def send(
        self, to: Address, body: str, *, template_sid: Optional[str] = None, status_callback: Optional[str] = None
    ) -> Accepted:
        """Ask Twilio to send one text (or an approved WhatsApp template) to ``to``."""
        form = {"To": to.value, **self.sender_fields(to.kind)}
        if template_sid:
            form["ContentSid"] = template_sid
        else:
            form["Body"] = body
        if status_callback:
            form["StatusCallback"] = status_callback
        auth = aiohttp.BasicAuth(self.settings.twilio_account_sid, self.settings.twilio_auth_token)
        try:
            async with self.http.post(
                self.messages_url, data=form, auth=auth, timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS)
            ) as reply:
                text = await reply.text()
                status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise SendError(f"no answer from Twilio ({type(exc).__name__})", permanent=False) from exc
        answer = _json(text)
        if 200 <= status < 300 and isinstance(answer.get("sid"), str):
            return Accepted(answer["sid"], str(answer.get("status") or "queued"))
        code = str(answer["code"]) if answer.get("code") is not None else None
        message = str(answer.get("message") or f"HTTP {status}")[:300]
        # 401/403: the account's credentials or permissions are wrong, which an operator can fix:
        # keep the text and try again later, like a server error.
        transient = status in (401, 403, 408, 429) or status >= 500 or status < 400
        raise SendError(f"Twilio answered HTTP {status}: {message}", permanent=not transient, code=code)


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
