"""Sends queued texts through Twilio, in conversation order, with retries: the SMS outbox.

Every text the channel or staff produce is first a row of ``sms_outbound`` (durable
before anything is promised), then sent by :class:`SmsSender`, which runs in the Rasa
process beside the channel. It works like the staff-notification outbox
(:mod:`bot.dashboard.notify.worker`): a short transaction claims one due row with a token and a
lease, the text is sent with no transaction open, another short transaction records
the result. Several senders (replicas) never send a row twice, and a sender that dies
mid-send leaves a row that comes back when its lease ends.

Rules checked at the moment of sending, whatever was true when the text was queued:

* nothing goes to a number that opted out, except the one confirmation of the opt-out;
* on WhatsApp, free text goes only within 24 hours of the patient's last message
  (:mod:`bot.core.messaging.window`); an approved template may go at any time.

A text Twilio refuses for good, or that fails :data:`MAX_ATTEMPTS` times, is marked
failed and audited on the conversation's escalation, where staff see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bot.assistant.messaging.twilio_api import UNSUBSCRIBED, SendError, TwilioApi, status_callback_url
from bot.core.messaging import store
from bot.core.messaging.addresses import Address, parse_address
from bot.core.messaging.window import free_text_allowed
from bot.core.store import repository as repo
from bot.core.store.models import AuditKind, SmsContact, SmsOutbound, SmsOutboundStatus, utcnow

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
#: Most texts one pass sends; the rest wait for the next pass.
MAX_PER_PASS = 50
#: How long a claimed text is reserved for its sender.
LEASE = timedelta(seconds=90)
#: Processed message ids and counters are kept this long.
KEEP_FOR = timedelta(days=2)
#: The only text that may go to a number that has opted out: the confirmation of that opt-out.
OPT_OUT_CONFIRMATION = "opt_out"


def retry_delay(attempts: int) -> timedelta:
    """Wait before the next attempt: 5 s, 10 s, 20 s... at most 5 minutes (a patient is waiting)."""
    return repo.backoff(attempts, base_seconds=5.0, cap_seconds=300.0)


@dataclass(frozen=True)
class Claimed:
    """A claimed text with what sending it needs, detached from any session."""

    id: int
    token: str
    to: Address
    body: str
    template_sid: Optional[str]
    attempts: int


class SmsSender:
    """Sends due texts in order; one pass at a time, woken early when something is queued here."""

    def __init__(self, sessions: sessionmaker, api: TwilioApi, webhook_url: str, interval: float = 1.0) -> None:
        self.sessions = sessions
        self.api = api
        self.webhook_url = webhook_url
        self.interval = interval
        self._wake = asyncio.Event()
        self._pruned_at = None

    def wake(self) -> None:
        """Start the next pass now (texts were queued by this process)."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Send in passes until ``stop`` is set; a failed pass is logged and retried."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError, ConnectionError) as exc:
                logger.warning("SMS sender pass failed (%s); will retry", type(exc).__name__)
            except Exception:  # noqa: BLE001 - the sender must outlive any single bad pass
                logger.exception("unexpected error in an SMS sender pass; will retry")
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait(waiters, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self) -> int:
        """Send what is due now; returns how many texts Twilio accepted."""
        await self._prune()
        sent = 0
        for _ in range(MAX_PER_PASS):
            claimed = await self._claim()
            if claimed is None:
                break
            error: Optional[SendError] = None
            sid = status = None
            try:
                accepted = await self.api.send(
                    claimed.to, claimed.body, template_sid=claimed.template_sid,
                    status_callback=status_callback_url(self.webhook_url, claimed.id),
                )
                sid, status = accepted.sid, accepted.status
            except SendError as exc:
                error = exc
            await self._record(claimed, sid, status, error)
            sent += error is None
        return sent

    async def _claim(self) -> Optional[Claimed]:
        """Claim the next due text; withhold (and record) it at once if the rules forbid sending it."""
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                while True:
                    row = await store.claim_outbound(session, now, LEASE)
                    if row is None:
                        return None
                    contact = await session.get(SmsContact, row.contact_id)
                    reason = withheld_because(row, contact, now)
                    if reason is None:
                        address = parse_address(contact.address) if contact else None
                        if address is not None:
                            return Claimed(row.id, row.claim_token, address, row.body, row.template_sid, row.attempts)
                        reason = "no_address"
                    row.status = SmsOutboundStatus.suppressed
                    row.claim_token = None
                    row.last_error = reason
                    logger.info("withheld SMS text %s (%s)", row.id, reason)
                    if row.origin == "staff":
                        await _audit_failure(session, row, reason=reason)

    async def _record(
        self, claimed: Claimed, sid: Optional[str], status: Optional[str], error: Optional[SendError]
    ) -> None:
        async with self.sessions() as session:
            async with session.begin():
                row = await store.claimed_outbound(session, claimed.id, claimed.token)
                if row is None:
                    logger.warning("the claim on SMS text %s expired before its result was recorded", claimed.id)
                    return
                row.claim_token = None
                now = utcnow()
                if error is None:
                    row.status = SmsOutboundStatus.sent
                    row.sent_at = now
                    row.twilio_sid = sid
                    if store.moves_forward(row.delivery_status, status or "queued"):
                        row.delivery_status = status
                        row.status_at = now
                    return  # an earlier attempt's error stays on the row: "sent after 2 attempts"
                row.last_error = str(error)[:500]
                row.error_code = error.code
                if error.permanent or row.attempts >= MAX_ATTEMPTS:
                    row.status = SmsOutboundStatus.failed
                    logger.error(
                        "gave up SMS text %s after %d attempt(s) (Twilio code %s)", row.id, row.attempts, error.code
                    )
                    await _audit_failure(session, row, reason="refused" if error.permanent else "retries_exhausted")
                    if error.code == UNSUBSCRIBED:
                        await _twilio_says_opted_out(session, row, now)
                else:
                    row.next_attempt_at = now + retry_delay(row.attempts)
                    logger.warning(
                        "SMS text %s not sent (attempt %d, Twilio code %s); will retry", row.id, row.attempts, error.code
                    )

    async def _prune(self) -> None:
        now = utcnow()
        if self._pruned_at is not None and now - self._pruned_at < timedelta(hours=1):
            return
        async with self.sessions() as session:
            async with session.begin():
                await store.prune(session, now - KEEP_FOR)
        self._pruned_at = now


def withheld_because(row: SmsOutbound, contact: Optional[SmsContact], now) -> Optional[str]:
    """Why a text must not go now (``opted_out``, ``whatsapp_window_closed``), or ``None``."""
    if contact is None:
        return "no_contact"
    if contact.opted_out_at is not None and row.origin != OPT_OUT_CONFIRMATION:
        return "opted_out"
    if not row.template_sid and not free_text_allowed(contact.kind, contact.last_inbound_at, now):
        return "whatsapp_window_closed"
    return None


async def _audit_failure(session, row: SmsOutbound, *, reason: str) -> None:
    """Put a text that did not reach the patient on the conversation's escalation (no text, no number)."""
    escalation_id = row.escalation_id or await store.open_escalation_id(session, row.sender_id)
    row.escalation_id = escalation_id
    await repo.add_audit(
        session, AuditKind.sms_delivery_failed, escalation_id=escalation_id, sender_id=row.sender_id,
        actor="assistant",
        detail={"text_id": row.id, "origin": row.origin, "reason": reason, "error_code": row.error_code,
                "attempts": row.attempts, "author": row.author},
    )


async def _twilio_says_opted_out(session, row: SmsOutbound, now) -> None:
    """Twilio refused because the number opted out with Twilio itself: record the opt-out here too."""
    contact = await session.get(SmsContact, row.contact_id)
    if contact is not None and contact.opted_out_at is None:
        contact.opted_out_at = now
        await repo.add_audit(
            session, AuditKind.sms_opted_out, sender_id=contact.sender_id, actor="twilio",
            escalation_id=row.escalation_id, detail={"source": "twilio", "kind": contact.kind},
        )
