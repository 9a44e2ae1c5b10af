"""Store queries of the messaging channel: contacts, processed messages, outgoing texts, counters.

Every function takes the session first and leaves the transaction to the caller, as
everywhere in the store. Each is safe with several Rasa and web replicas: rows are
created with ``INSERT ... ON CONFLICT DO NOTHING`` on their unique keys, counters are
incremented in the database, and outgoing texts are claimed with a token and a lease
(``SKIP LOCKED`` on PostgreSQL, a conditional update everywhere).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Optional, Sequence

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.core.messaging.addresses import Address
from bot.core.messaging.segments import segments
from bot.core.store.models import Escalation, SmsContact, SmsCounter, SmsInbound, SmsOutbound, SmsOutboundStatus, Status

#: Counter scopes.
INBOUND_PER_MINUTE = "in_minute"
OUTBOUND_PER_DAY = "out_day"
CAP_NOTICE = "cap_notice"

#: Twilio's statuses in the order a message moves through them; a late callback never moves one back.
DELIVERY_ORDER = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "read": 5, "undelivered": 6, "failed": 6, "canceled": 6,
}
FAILED_DELIVERY = frozenset({"undelivered", "failed"})


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert  # type: ignore[union-attr]


def new_sender_id() -> str:
    """A random conversation id for a new address: the number never becomes a Rasa sender id."""
    return "sms-" + secrets.token_hex(12)


async def contact_for(session: AsyncSession, address: Address, now: datetime) -> SmsContact:
    """The address's contact row, created on its first message (race-free across replicas)."""
    insert = _insert(session)
    await session.execute(
        insert(SmsContact.__table__)
        .values(address=address.value, kind=address.kind, sender_id=new_sender_id(), created_at=now)
        .on_conflict_do_nothing(index_elements=["address"])
    )
    query = select(SmsContact).where(SmsContact.address == address.value).execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one()


async def contact_by_sender(session: AsyncSession, sender_id: str) -> Optional[SmsContact]:
    """The contact of a conversation id, if it is a messaging conversation."""
    return (await session.execute(select(SmsContact).where(SmsContact.sender_id == sender_id))).scalar_one_or_none()


async def take_in(session: AsyncSession, message_sid: str, contact_id: int, now: datetime) -> bool:
    """Record a ``MessageSid`` as taken in; False if it already was (Twilio retried the webhook)."""
    insert = _insert(session)
    result = await session.execute(
        insert(SmsInbound.__table__)
        .values(message_sid=message_sid, contact_id=contact_id, received_at=now)
        .on_conflict_do_nothing(index_elements=["message_sid"])
    )
    return result.rowcount == 1


def minute_window(now: datetime) -> str:
    """The counter window of the minute ``now`` falls in (UTC)."""
    return now.strftime("%Y%m%d%H%M")


def day_window(now: datetime) -> str:
    """The counter window of the day ``now`` falls in (UTC)."""
    return now.strftime("%Y%m%d")


async def bump(session: AsyncSession, scope: str, key: str, window: str, now: datetime, by: int = 1) -> int:
    """Add ``by`` to a counter and return its new value."""
    insert = _insert(session)
    table = SmsCounter.__table__
    statement = insert(table).values(scope=scope, key=key, window=window, count=by, created_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["scope", "key", "window"], set_={"count": table.c.count + by}
        )
    )
    query = select(SmsCounter.count).where(
        SmsCounter.scope == scope, SmsCounter.key == key, SmsCounter.window == window
    )
    return (await session.execute(query)).scalar_one()


async def count(session: AsyncSession, scope: str, key: str, window: str) -> int:
    """A counter's value (0 if never bumped)."""
    query = select(SmsCounter.count).where(
        SmsCounter.scope == scope, SmsCounter.key == key, SmsCounter.window == window
    )
    return (await session.execute(query)).scalar_one_or_none() or 0


async def prune(session: AsyncSession, before: datetime) -> None:
    """Forget processed message ids and counters older than ``before`` (Twilio retries within minutes)."""
    await session.execute(SmsInbound.__table__.delete().where(SmsInbound.received_at < before))
    await session.execute(SmsCounter.__table__.delete().where(SmsCounter.created_at < before))


async def open_escalation_id(session: AsyncSession, sender_id: str) -> Optional[str]:
    """The conversation's most recent escalation that is not resolved, if any."""
    query = (
        select(Escalation.id)
        .where(Escalation.sender_id == sender_id, Escalation.status != Status.resolved)
        .order_by(Escalation.created_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def queue(
    session: AsyncSession,
    contact: SmsContact,
    bodies: Iterable[str],
    now: datetime,
    *,
    origin: str = "assistant",
    author: Optional[str] = None,
    escalation_id: Optional[str] = None,
    staff_line_id: Optional[int] = None,
    template_sid: Optional[str] = None,
    status: SmsOutboundStatus = SmsOutboundStatus.pending,
    reason: Optional[str] = None,
) -> list[SmsOutbound]:
    """Queue text parts for the contact, in order (``status``/``reason``: record them withheld instead)."""
    if escalation_id is None:
        escalation_id = await open_escalation_id(session, contact.sender_id)
    rows = [
        SmsOutbound(
            created_at=now, contact_id=contact.id, sender_id=contact.sender_id, escalation_id=escalation_id,
            staff_line_id=staff_line_id, origin=origin, author=author, body=body, template_sid=template_sid,
            status=status, attempts=0, next_attempt_at=now, last_error=reason,
        )
        for body in bodies
    ]
    session.add_all(rows)
    await session.flush()
    return rows


def _due(now: datetime) -> Any:
    return (SmsOutbound.status == SmsOutboundStatus.pending, SmsOutbound.next_attempt_at <= now)


async def claim_outbound(session: AsyncSession, now: datetime, lease: timedelta) -> Optional[SmsOutbound]:
    """Claim the oldest due text whose conversation has nothing earlier still waiting.

    A conversation's texts go out strictly in order: a part waiting for a retry holds
    back the parts after it. The claim moves the row's next attempt to ``now + lease``
    (it comes back if the sender dies) and counts the attempt; the caller commits at
    once and sends outside any transaction.
    """
    earlier = aliased(SmsOutbound)
    first_in_line = ~exists().where(
        and_(
            earlier.contact_id == SmsOutbound.contact_id,
            earlier.status == SmsOutboundStatus.pending,
            earlier.id < SmsOutbound.id,
        )
    )
    query = (
        select(SmsOutbound.id)
        .where(*_due(now), first_in_line)
        .order_by(SmsOutbound.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=SmsOutbound)
    )
    row_id = (await session.execute(query)).scalar_one_or_none()
    if row_id is None:
        return None
    token = str(uuid.uuid4())
    result = await session.execute(
        update(SmsOutbound)
        .where(SmsOutbound.id == row_id, *_due(now))
        .values(claim_token=token, next_attempt_at=now + lease, attempts=SmsOutbound.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None  # another sender took it between the select and the update (SQLite)
    return await claimed_outbound(session, row_id, token)


async def claimed_outbound(session: AsyncSession, row_id: int, token: str) -> Optional[SmsOutbound]:
    """The row if this claim still holds it, locked for the update."""
    query = (
        select(SmsOutbound)
        .where(SmsOutbound.id == row_id, SmsOutbound.claim_token == token)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def outbound_for_callback(
    session: AsyncSession, message_sid: str, row_id: Optional[int]
) -> Optional[SmsOutbound]:
    """The text a status callback is about: by Twilio's sid, or by our own id from the callback URL."""
    query = select(SmsOutbound).where(SmsOutbound.twilio_sid == message_sid).with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None and row_id is not None:
        query = select(SmsOutbound).where(SmsOutbound.id == row_id).with_for_update()
        row = (await session.execute(query)).scalar_one_or_none()
        if row is not None and row.twilio_sid not in (None, message_sid):
            return None
    return row


def moves_forward(current: Optional[str], new: str) -> bool:
    """Whether Twilio status ``new`` is news after ``current`` (callbacks may arrive out of order)."""
    if current is None:
        return True
    return DELIVERY_ORDER.get(new, -1) > DELIVERY_ORDER.get(current, -1)


@dataclass(frozen=True)
class TextView:
    """One outgoing text as the dashboard shows it (staff-only: holds the body)."""

    id: int
    created_at: datetime
    origin: str
    author: Optional[str]
    body: str
    status: str
    delivery_status: Optional[str]
    error_code: Optional[str]
    last_error: Optional[str]

    @property
    def failed(self) -> bool:
        """Whether the patient did not get it: given up, or Twilio reported it undelivered."""
        return self.status == SmsOutboundStatus.failed.value or (self.delivery_status or "") in FAILED_DELIVERY

    @property
    def segments(self) -> int:
        """How many SMS segments the text is (or would have been) sent as."""
        return segments(self.body)

    @property
    def sent(self) -> bool:
        """Whether it went to Twilio (withheld, waiting and given-up texts cost nothing)."""
        return self.status == SmsOutboundStatus.sent.value

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id, "created_at": self.created_at.isoformat(), "origin": self.origin,
            "author": self.author, "body": self.body, "status": self.status,
            "delivery_status": self.delivery_status, "error_code": self.error_code,
            "error": self.last_error, "failed": self.failed, "segments": self.segments,
        }


async def recent_texts(session: AsyncSession, sender_id: str, limit: int = 50) -> Sequence[TextView]:
    """The conversation's latest outgoing texts, oldest first."""
    query = select(SmsOutbound).where(SmsOutbound.sender_id == sender_id).order_by(SmsOutbound.id.desc()).limit(limit)
    rows = list((await session.execute(query)).scalars())
    return [
        TextView(
            row.id, row.created_at, row.origin, row.author, row.body,
            getattr(row.status, "value", row.status), row.delivery_status, row.error_code, row.last_error,
        )
        for row in reversed(rows)
    ]


def segments_sent(texts: Iterable[TextView]) -> int:
    """Segments of the texts that went to Twilio: what the conversation cost."""
    return sum(text.segments for text in texts if text.sent)


@dataclass(frozen=True)
class SmsUsage:
    """What texting one conversation cost: texts and segments sent, and texts withheld by rule."""

    texts_sent: int = 0
    segments_sent: int = 0
    withheld: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON form."""
        return {"texts_sent": self.texts_sent, "segments_sent": self.segments_sent, "withheld": self.withheld}


async def usage(session: AsyncSession, sender_id: str) -> Optional[SmsUsage]:
    """The conversation's texting so far; ``None`` if it is not a text conversation."""
    if await contact_by_sender(session, sender_id) is None:
        return None
    query = select(SmsOutbound.body, SmsOutbound.status).where(SmsOutbound.sender_id == sender_id)
    rows = (await session.execute(query)).all()
    sent = [body for body, status in rows if status == SmsOutboundStatus.sent]
    withheld = sum(1 for _, status in rows if status == SmsOutboundStatus.suppressed)
    return SmsUsage(len(sent), sum(segments(body or "") for body in sent), withheld)


async def failed_count(session: AsyncSession, escalation_id: str) -> int:
    """How many texts linked to an escalation did not reach the patient."""
    query = select(func.count()).select_from(SmsOutbound).where(
        SmsOutbound.escalation_id == escalation_id,
        (SmsOutbound.status == SmsOutboundStatus.failed) | SmsOutbound.delivery_status.in_(FAILED_DELIVERY),
    )
    return (await session.execute(query)).scalar_one()
