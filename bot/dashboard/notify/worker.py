"""Delivers staff notifications from the outbox, with retry and backoff, urgent first.

Runs inside the web app process (``cleanup_ctx``). Each pass it also replays
escalations spooled while the database was down. A delivery failure never
reaches the patient: the escalation is already stored and the notification is
retried later; after ``MAX_ATTEMPTS`` it is marked dead and audited.

No transaction is open while a message is sent: a short transaction claims
due rows (``SKIP LOCKED``, urgent first, then oldest) and gives them a lease,
the message is sent, and another short transaction records the result. A
sender that dies mid-send leaves rows that come back when the lease ends, and
several notifier processes never send the same row at once.

Emails and webhooks carry the escalation's id, reason and priority and the
absolute link to its page on the staff dashboard (``PUBLIC_WEB_URL`` +
``/staff/escalations/{id}``, sign-in required); never patient text, names or
contact details. The link is added when the message is sent, so it follows the
current setting.

Each pass also sends the on-call rounds that are due (:mod:`bot.core.escalation.on_call`):
urgent cases nobody has opened go by SMS (queued in the SMS outbox) and/or email (transport
``on_call_email``, sent here to the contact's address) to the on-call contacts in ``clinic.yml``,
and pushes each new urgent case to the subscribed staff browsers (:mod:`bot.dashboard.notify.web_push`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, Optional
from urllib.parse import quote

import aiohttp
import aiosmtplib
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic
from bot.core.escalation import on_call
from bot.core.escalation.service import EscalationService, on_call_channels
from bot.core.settings import Settings
from bot.core.store import repository as repo
from bot.core.store.models import AuditKind, OutboxStatus, utcnow

try:  # pywebpush is in .venv-web only (requirements-web.in); tests/notify run this module in .venv
    from bot.dashboard.notify import web_push
except ImportError:  # pragma: no cover - the web app's environment has it (tests/unit/test_web_environment.py)
    web_push = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
SIGNATURE_HEADER = "X-Assistant-Signature"
#: Most messages one pass sends; the rest wait for the next pass.
MAX_PER_PASS = 20
#: Upper bound of one delivery (SMTP conversation or webhook call).
SEND_TIMEOUT_SECONDS = 30.0
#: How long a claimed message is reserved: it returns to the queue if no result is recorded by then.
LEASE = timedelta(seconds=SEND_TIMEOUT_SECONDS + 60)


class DeliveryError(Exception):
    """A notification could not be delivered this time."""


def escalation_url(settings: Settings, escalation_id: str) -> Optional[str]:
    """The absolute address of the escalation's page on the staff dashboard (``None`` without a public URL)."""
    base = settings.public_web_url.rstrip("/")
    if not base or not escalation_id:
        return None
    return f"{base}/staff/escalations/{quote(str(escalation_id), safe='')}"


def sign(secret: str, body: bytes) -> str:
    """HMAC-SHA256 signature of a webhook body, hex encoded with a ``sha256=`` prefix."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Claimed:
    """A claimed outbox message, detached from any session while it is sent."""

    id: int
    token: str
    escalation_id: str
    transport: str
    payload: dict[str, Any]
    attempts: int


class Notifier:
    """Sends pending outbox messages by email or webhook."""

    def __init__(
        self,
        settings: Settings,
        clinic: Clinic,
        sessions: sessionmaker,
        escalations: EscalationService,
        http: Optional[aiohttp.ClientSession] = None,
    ) -> None:
        self.settings = settings
        self.clinic = clinic
        self.sessions = sessions
        self.escalations = escalations
        self.http = http
        self.on_call = on_call.OnCallAlerts(
            sessions, clinic.on_call_plan, on_call_channels(settings), clinic.name, settings.public_web_url
        )
        self.web_push = web_push.WebPushAlerts.from_settings(settings, clinic, sessions) if web_push else None
        if web_push is None:
            logger.warning("pywebpush is not installed here: no Web Push to staff browsers")

    async def run_forever(self, stop: Optional[asyncio.Event] = None) -> None:
        """Deliver and replay in a loop until ``stop`` is set (the pass under way finishes first) or cancelled."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError, ConnectionError) as exc:
                logger.warning("notifier pass failed (%s); will retry", type(exc).__name__)
            except Exception:  # noqa: BLE001 - the worker must outlive any single bad pass
                logger.exception("unexpected error in a notifier pass; will retry")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.notify_interval_seconds)

    async def run_once(self) -> int:
        """One pass: replay the spool, then deliver due notifications. Returns how many were sent."""
        await self.escalations.spool.replay(self.escalations.store_spooled)
        await self.on_call.run_once()  # before the deliveries: an on-call round is queued at once
        if self.web_push is not None:
            await self.web_push.run_once()  # before the deliveries too: a slow SMTP server must not hold it
        sent = 0
        for _ in range(MAX_PER_PASS):
            message = await self._claim()
            if message is None:
                break
            error = await self._deliver(message)
            await self._record(message, error)
            sent += error is None
        return sent

    async def _claim(self) -> Optional[Claimed]:
        """Claim the most urgent due message in a short transaction of its own."""
        async with self.sessions() as session:
            async with session.begin():
                rows = await repo.claim_notifications(session, utcnow(), LEASE, limit=1)
                if not rows:
                    return None
                row = rows[0]
                return Claimed(row.id, row.claim_token, row.escalation_id, row.transport, row.payload, row.attempts)

    async def _deliver(self, message: Claimed) -> Optional[str]:
        """Send one message outside any transaction; the error text, or ``None`` when it was delivered."""
        try:
            if message.transport == "email":
                send = self._send_email(message.payload)
            elif message.transport == on_call.EMAIL_TRANSPORT:
                send = self._send_on_call_email(message.payload)
            elif message.transport == "webhook":
                send = self._send_webhook(message.payload)
            else:
                raise DeliveryError(f"unknown transport {message.transport}")
            await asyncio.wait_for(send, SEND_TIMEOUT_SECONDS)
        except (DeliveryError, aiosmtplib.SMTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        return None

    async def _record(self, message: Claimed, error: Optional[str]) -> None:
        """Record one delivery's result in a short transaction: sent, retry later, or dead."""
        async with self.sessions() as session:
            async with session.begin():
                row = await repo.claimed_notification(session, message.id, message.token)
                if row is None:
                    logger.warning(
                        "the claim on the notification of escalation %s expired before its result was recorded",
                        message.escalation_id,
                    )
                    return
                row.claim_token = None
                if error is None:
                    row.status = OutboxStatus.sent
                    row.sent_at = utcnow()
                    row.last_error = None
                    await repo.add_audit(
                        session, AuditKind.notification_sent, escalation_id=row.escalation_id,
                        detail={"transport": row.transport},
                    )
                    return
                row.last_error = error
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = OutboxStatus.dead
                    await repo.add_audit(
                        session, AuditKind.notification_failed, escalation_id=row.escalation_id,
                        detail={"transport": row.transport, "attempts": row.attempts, "error": error},
                    )
                    logger.error("gave up notifying staff of escalation %s by %s", row.escalation_id, row.transport)
                else:
                    row.next_attempt_at = utcnow() + repo.backoff(row.attempts)
                    logger.warning(
                        "notifying staff of escalation %s by %s failed (attempt %d): %s",
                        row.escalation_id, row.transport, row.attempts, error,
                    )

    def _subject(self, payload: dict[str, Any]) -> str:
        prefix = "[URGENT] " if payload.get("urgent") else ""
        reason = str(payload.get("reason", "")).replace("_", " ")
        if payload.get("possible_abuse"):
            reason = "possible abuse"  # one address past its cap of urgent escalations (bot/core/escalation/flood.py)
        # Short enough (under 78 characters with "Subject: ") not to be folded, which some
        # mail clients show with a leading space.
        return f"{prefix}{reason} escalation {payload.get('escalation_id', '')[:8]} ({self.clinic.name[:28]})"

    async def _send_email(self, payload: dict[str, Any]) -> None:
        s = self.settings
        email = EmailMessage()
        email["From"] = s.notify_from
        email["To"] = s.notify_email_to
        email["Subject"] = self._subject(payload)
        if payload.get("urgent"):
            email["X-Priority"] = "1"
            email["Importance"] = "high"
        link = escalation_url(s, str(payload.get("escalation_id", "")))
        where = (
            f"Open it on the staff dashboard (sign-in required):\n{link}\n\n" if link else
            "Open it on the staff dashboard under this id.\n\n"
        )
        email.set_content(
            "A conversation with the patient assistant needs staff attention.\n\n"
            f"Escalation: {payload.get('escalation_id')}\n"
            f"Reason: {payload.get('reason')}\n"
            + ("Possible abuse: one client address passed its hourly cap of urgent escalations; the rest of\n"
               "its urgent messages are grouped in this case. Check it for a real patient.\n"
               if payload.get("possible_abuse") else "")
            + f"Priority: {payload.get('priority')}\n\n"
            f"{where}"
            "No patient information is sent by email: the conversation and the patient's\n"
            "contact details are on the dashboard.\n"
        )
        await aiosmtplib.send(
            email,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user or None,
            password=s.smtp_password or None,
            start_tls=s.smtp_starttls,
            timeout=10,
        )

    async def _send_on_call_email(self, payload: dict[str, Any]) -> None:
        """An on-call alert to one contact: the case's reference and link, no patient information."""
        to = str(payload.get("to") or "")
        if not to:
            raise DeliveryError("on-call email without an address")
        escalation_id = str(payload.get("escalation_id", ""))
        link = escalation_url(self.settings, escalation_id)
        email = EmailMessage()
        email["From"] = self.settings.notify_from
        email["To"] = to
        email["Subject"] = f"[URGENT] on call: case {on_call.reference(escalation_id)} ({self.clinic.name[:28]})"
        email["X-Priority"] = "1"
        email["Importance"] = "high"
        again = "Nobody has opened it yet: this is a reminder.\n\n" if payload.get("round") else ""
        email.set_content(
            "An urgent case needs someone now and you are on call.\n\n"
            f"{again}Case: {on_call.reference(escalation_id)}\n"
            + (f"Open it on the staff dashboard (sign-in required):\n{link}\n\n" if link else
               "Open it on the staff dashboard under this reference.\n\n")
            + "No patient information is sent by email.\n"
        )
        s = self.settings
        await aiosmtplib.send(
            email, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_user or None,
            password=s.smtp_password or None, start_tls=s.smtp_starttls, timeout=10,
        )

    async def _send_webhook(self, payload: dict[str, Any]) -> None:
        link = escalation_url(self.settings, str(payload.get("escalation_id", "")))
        body = json.dumps({**payload, "url": link} if link else payload, sort_keys=True).encode()
        headers = {"Content-Type": "application/json"}
        if self.settings.notify_webhook_secret:
            headers[SIGNATURE_HEADER] = sign(self.settings.notify_webhook_secret, body)
        if self.http is None:
            raise DeliveryError("no HTTP client")
        async with self.http.post(
            self.settings.notify_webhook_url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as reply:
            if reply.status >= 300:
                raise DeliveryError(f"webhook answered HTTP {reply.status}")
