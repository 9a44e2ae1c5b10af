"""What the messaging channel does with the store around each patient text, in short transactions.

The Rasa channel (:mod:`bot.assistant.channels.twilio_sms`) stays a thin adapter: it checks the
request, then asks this service to

* :meth:`SmsService.take_in` a text: the address's contact (created on first contact,
  with a random conversation id), whether the ``MessageSid`` was already processed,
  the patient's count this minute, and the choices still open;
* record an opt-out or opt-in (:meth:`opt_out`, :meth:`opt_in`), audited;
* :meth:`queue_turn` the assistant's replies of one turn (numbered choices, the full
  answer MORE would send, parts, the daily cap), or :meth:`queue_texts` a fixed text
  (HELP, a keyword confirmation);
* :meth:`send_full_answer` when the patient replies MORE (:mod:`bot.assistant.messaging.more`);
* :meth:`record_delivery` of a status callback.

Nothing here holds state between requests: every replica reads and writes the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Optional

from sqlalchemy.orm import sessionmaker

from bot.assistant.messaging.choices import Choice
from bot.assistant.messaging.more import FullAnswer, stored_full_answer
from bot.assistant.messaging.outbox import OPT_OUT_CONFIRMATION
from bot.assistant.messaging.replies import render_turn
from bot.assistant.messaging.texts import SmsTexts
from bot.core.clinic import Clinic
from bot.core.messaging import store
from bot.core.messaging.addresses import Address, parse_address
from bot.core.store import chat
from bot.core.store import repository as repo
from bot.core.store.models import AuditKind, SmsContact, SmsOutboundStatus, utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intake:
    """A patient text taken in: its conversation, and what the channel must know to answer it."""

    contact_id: int
    sender_id: str
    kind: str
    duplicate: bool
    opted_out: bool
    #: Texts from this conversation in the current minute, this one included.
    this_minute: int
    choices: tuple[Choice, ...] = field(default_factory=tuple)
    #: The number's first text ever: the reply must start by saying what the assistant is.
    first: bool = False
    #: The full answer a MORE would send now (``None``: no short answer is waiting for it).
    more: Optional[FullAnswer] = None
    #: A staff member is texting this patient (an open takeover): the rate limit does not apply.
    staff_holding: bool = False


class SmsService:
    """The channel's store operations, each in its own short transaction."""

    def __init__(self, sessions: sessionmaker, texts: SmsTexts, clinic: Clinic, daily_cap: int) -> None:
        self.sessions = sessions
        self.texts = texts
        self.clinic = clinic
        self.daily_cap = daily_cap

    async def take_in(
        self, address: Address, message_sid: str, now: Optional[datetime] = None, *, again: bool = False
    ) -> Intake:
        """Record a patient text; ``duplicate`` if its ``MessageSid`` was processed before.

        ``again``: a text replayed from the spool (:mod:`bot.core.messaging.inbound_spool`), read
        even if its ``MessageSid`` is recorded: the webhook may have given up on a take-in
        that committed later, without reading the text.
        """
        now = now or utcnow()
        async with self.sessions() as session:
            async with session.begin():
                contact = await store.contact_for(session, address, now)
                fresh = await store.take_in(session, message_sid, contact.id, now)
                if not fresh and not again:
                    return Intake(contact.id, contact.sender_id, contact.kind, True, contact.opted_out_at is not None, 0)
                contact.last_inbound_at = now
                this_minute = await store.bump(
                    session, store.INBOUND_PER_MINUTE, contact.sender_id, store.minute_window(now), now
                )
                open_now = self._still_open(contact, now)
                holding = await chat.active_takeover(session, contact.sender_id) is not None
                return Intake(
                    contact.id, contact.sender_id, contact.kind, False, contact.opted_out_at is not None,
                    this_minute, tuple(self._open_choices(contact, now)), first=contact.created_at == now,
                    more=stored_full_answer(contact.choices) if open_now else None, staff_holding=holding,
                )

    def _still_open(self, contact: SmsContact, now: datetime) -> bool:
        """Whether what the last turn offered (numbered choices, MORE) may still be answered."""
        if not contact.choices or contact.choices_at is None:
            return False
        return now - contact.choices_at <= timedelta(minutes=self.texts.choices_valid_minutes)

    def _open_choices(self, contact: SmsContact, now: datetime) -> list[Choice]:
        if not self._still_open(contact, now):
            return []
        return [choice for choice in map(Choice.from_dict, contact.choices) if choice is not None]

    async def number_of(self, intake: Intake) -> Optional[str]:
        """The patient's phone number (for staff to call; never logged), ``None`` if unreadable."""
        async with self.sessions() as session:
            contact = await session.get(SmsContact, intake.contact_id)
        address = parse_address(contact.address) if contact is not None else None
        return address.number if address is not None else None

    async def opt_out(self, intake: Intake, source: str = "keyword") -> bool:
        """Record the opt-out and queue its one confirmation; False if the number had already opted out."""
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                contact = await session.get(SmsContact, intake.contact_id, with_for_update=True)
                if contact.opted_out_at is not None:
                    return False
                contact.opted_out_at = now
                contact.choices = None
                await repo.add_audit(
                    session, AuditKind.sms_opted_out, sender_id=contact.sender_id, actor="patient",
                    escalation_id=await store.open_escalation_id(session, contact.sender_id),
                    detail={"source": source, "kind": contact.kind},
                )
                await store.queue(
                    session, contact, [self.texts.render("opted_out", self.clinic)], now, origin=OPT_OUT_CONFIRMATION
                )
                return True

    async def opt_in(self, intake: Intake) -> bool:
        """Record a re-subscription and queue its confirmation; False if the number had not opted out."""
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                contact = await session.get(SmsContact, intake.contact_id, with_for_update=True)
                if contact.opted_out_at is None:
                    return False
                contact.opted_out_at = None
                contact.opted_in_at = now
                await repo.add_audit(
                    session, AuditKind.sms_opted_in, sender_id=contact.sender_id, actor="patient",
                    escalation_id=await store.open_escalation_id(session, contact.sender_id),
                    detail={"kind": contact.kind},
                )
                await store.queue(session, contact, [self.texts.render("opted_in", self.clinic)], now, origin="keyword")
                return True

    async def queue_texts(self, intake: Intake, texts: Iterable[str], origin: str = "keyword") -> int:
        """Queue fixed texts (HELP, the media notice, the rate-limit notice), split into parts if long."""
        messages = [{"text": text} for text in texts]
        return await self.queue_turn(intake, messages, origin=origin, keep_choices=True)

    async def queue_turn(
        self,
        intake: Intake,
        messages: Iterable[dict[str, Any]],
        origin: str = "assistant",
        keep_choices: bool = False,
        more: Optional[FullAnswer] = None,
        urgent: bool = False,
    ) -> int:
        """Queue the replies of one turn, in order, within the daily cap; returns how many parts were queued.

        The turn's choices and ``more`` (the full answer a MORE will send) replace the
        conversation's (none: no numbered answer and no MORE is open), unless
        ``keep_choices``. Past the cap, one notice with the clinic's phone number goes out
        that day instead, and nothing more, except an ``urgent`` turn (a red flag's urgent
        guidance), which always goes out.
        """
        turn = render_turn(messages, self.texts.part_chars)
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                contact = await session.get(SmsContact, intake.contact_id, with_for_update=True)
                if not keep_choices:
                    offered = [choice.to_dict() for choice in turn.choices] + ([more.to_dict()] if more else [])
                    contact.choices = offered or None
                    contact.choices_at = now if offered else None
                return await self._queue_parts(session, contact, turn.parts, now, origin, urgent=urgent)

    async def send_full_answer(self, intake: Intake) -> int:
        """The patient replied MORE: queue the full answer in parts and close the offer (numbered choices stay).

        Returns how many parts were queued; 0 if no full answer was waiting (another
        replica's MORE got there first).
        """
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                contact = await session.get(SmsContact, intake.contact_id, with_for_update=True)
                full = stored_full_answer(contact.choices) if self._still_open(contact, now) else None
                if full is None:
                    return 0
                kept = [raw for raw in contact.choices if Choice.from_dict(raw) is not None]
                contact.choices = kept or None
                contact.choices_at = contact.choices_at if kept else None
                parts = render_turn([{"text": full.text}], self.texts.part_chars).parts
                return await self._queue_parts(session, contact, parts, now, "assistant")

    async def _queue_parts(
        self, session: Any, contact: SmsContact, parts: list[str], now: datetime, origin: str, urgent: bool = False
    ) -> int:
        """Queue ``parts`` for the contact within the daily cap (inside the caller's transaction).

        ``urgent`` parts go out past the cap too (they still count towards it).
        """
        if not parts:
            return 0
        day = store.day_window(now)
        used = await store.count(session, store.OUTBOUND_PER_DAY, contact.sender_id, day)
        if urgent and used + len(parts) > self.daily_cap:
            logger.warning("daily text cap passed for conversation %s: urgent guidance sent anyway", contact.sender_id[:8])
        if urgent or used + len(parts) <= self.daily_cap:
            await store.bump(session, store.OUTBOUND_PER_DAY, contact.sender_id, day, now, by=len(parts))
            await store.queue(session, contact, parts, now, origin=origin)
            return len(parts)
        reason = "daily_cap"
        await store.queue(
            session, contact, parts, now, origin=origin, status=SmsOutboundStatus.suppressed, reason=reason
        )
        notices = await store.bump(session, store.CAP_NOTICE, contact.sender_id, day, now)
        logger.warning("daily text cap reached for conversation %s", contact.sender_id[:8])
        if notices == 1:
            await store.queue(session, contact, [self.texts.render("daily_cap", self.clinic)], now, origin="keyword")
            return 1
        return 0

    async def record_delivery(
        self, message_sid: str, row_id: Optional[int], status: str, error_code: Optional[str]
    ) -> bool:
        """Record a delivery status callback; a failed delivery is audited on the escalation. False: unknown text."""
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                row = await store.outbound_for_callback(session, message_sid, row_id)
                if row is None:
                    return False
                if row.twilio_sid is None:
                    row.twilio_sid = message_sid
                if not store.moves_forward(row.delivery_status, status):
                    return True
                row.delivery_status = status
                row.status_at = now
                if error_code:
                    row.error_code = error_code[:16]
                if status in store.FAILED_DELIVERY:
                    escalation_id = row.escalation_id or await store.open_escalation_id(session, row.sender_id)
                    row.escalation_id = escalation_id
                    await repo.add_audit(
                        session, AuditKind.sms_delivery_failed, escalation_id=escalation_id, sender_id=row.sender_id,
                        detail={"text_id": row.id, "origin": row.origin, "reason": status, "error_code": error_code,
                                "attempts": row.attempts, "author": row.author},
                    )
                    logger.warning("Twilio reports SMS text %s %s (code %s)", row.id, status, error_code)
                return True
