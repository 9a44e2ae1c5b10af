"""Delivers staff notifications from the outbox, with retry and backoff.

Runs inside the web app process (``cleanup_ctx``). Each pass it also replays
escalations spooled while the database was down. A delivery failure never
reaches the patient: the escalation is already stored and the notification is
retried later; after ``MAX_ATTEMPTS`` it is marked dead and audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from email.message import EmailMessage
from typing import Any, Optional

import aiohttp
import aiosmtplib
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bot.clinic import Clinic
from bot.escalation.service import EscalationService
from bot.settings import Settings
from bot.store import repository as repo
from bot.store.models import AuditKind, OutboxMessage, OutboxStatus, utcnow

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
SIGNATURE_HEADER = "X-Assistant-Signature"


class DeliveryError(Exception):
    """A notification could not be delivered this time."""


def sign(secret: str, body: bytes) -> str:
    """HMAC-SHA256 signature of a webhook body, hex encoded with a ``sha256=`` prefix."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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

    async def run_forever(self) -> None:
        """Deliver and replay in a loop until cancelled."""
        while True:
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError, ConnectionError) as exc:
                logger.warning("notifier pass failed (%s); will retry", type(exc).__name__)
            except Exception:  # noqa: BLE001 - the worker must outlive any single bad pass
                logger.exception("unexpected error in a notifier pass; will retry")
            await asyncio.sleep(self.settings.notify_interval_seconds)

    async def run_once(self) -> int:
        """One pass: replay the spool, then deliver due notifications. Returns how many were sent."""
        await self.escalations.spool.replay(self.escalations.store_spooled)
        sent = 0
        async with self.sessions() as session:
            async with session.begin():
                for message in await repo.due_notifications(session, utcnow()):
                    if await self._attempt(session, message):
                        sent += 1
        return sent

    async def _attempt(self, session: Any, message: OutboxMessage) -> bool:
        try:
            if message.transport == "email":
                await self._send_email(message.payload)
            elif message.transport == "webhook":
                await self._send_webhook(message.payload)
            else:
                raise DeliveryError(f"unknown transport {message.transport}")
        except (DeliveryError, aiosmtplib.SMTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            message.attempts += 1
            message.last_error = f"{type(exc).__name__}: {exc}"[:500]
            if message.attempts >= MAX_ATTEMPTS:
                message.status = OutboxStatus.dead
                await repo.add_audit(
                    session, AuditKind.notification_failed, escalation_id=message.escalation_id,
                    detail={"transport": message.transport, "attempts": message.attempts, "error": message.last_error},
                )
                logger.error("gave up notifying staff of escalation %s by %s", message.escalation_id, message.transport)
            else:
                message.next_attempt_at = utcnow() + repo.backoff(message.attempts)
                logger.warning(
                    "notifying staff of escalation %s by %s failed (attempt %d): %s",
                    message.escalation_id, message.transport, message.attempts, message.last_error,
                )
            return False
        message.attempts += 1
        message.status = OutboxStatus.sent
        message.sent_at = utcnow()
        await repo.add_audit(
            session, AuditKind.notification_sent, escalation_id=message.escalation_id,
            detail={"transport": message.transport},
        )
        return True

    def _subject(self, payload: dict[str, Any]) -> str:
        prefix = "[URGENT] " if payload.get("urgent") else ""
        reason = str(payload.get("reason", "")).replace("_", " ")
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
        email.set_content(
            "A conversation with the patient assistant needs staff attention.\n\n"
            f"Escalation: {payload.get('escalation_id')}\n"
            f"Reason: {payload.get('reason')}\n"
            f"Priority: {payload.get('priority')}\n\n"
            "Open the staff dashboard to read the conversation and the patient's contact details.\n"
            "(No patient information is sent by email.)\n"
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

    async def _send_webhook(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, sort_keys=True).encode()
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
