"""Repository functions of the escalation store.

Each takes the session first; the caller owns the transaction
(``async with session.begin():``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Optional, Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.store.models import OPEN_EPISODE, PRIORITY_RANK, AuditEvent, AuditKind, Escalation, OutboxMessage, OutboxStatus, Priority, Reason, Status, utcnow

PRIORITY_ORDER = [Priority.normal, Priority.high, Priority.urgent]
#: Earlier triggers kept on an escalation; ``occurrences`` keeps the full count.
TRIGGER_HISTORY_LIMIT = 50
#: The trigger's key naming the patient message a write answers (Rasa's message id, set by
#: bot/core/escalation/record.py): the Rasa server (action server hung) and the action server (late)
#: may both write the same message; the open record takes it once.
WRITE_KEY = "written_for"
#: Any constant: serialises the "unusual volume" check across action-server processes on PostgreSQL.
VOLUME_LOCK_KEY = 120_001


@dataclass
class EscalationInput:
    """What the assistant knows when it escalates a conversation."""

    sender_id: str
    channel: str
    reason: Reason
    priority: Priority
    trigger: dict[str, Any]
    transcript: list[dict[str, Any]]
    contact_name: Optional[str] = None
    contact_method: Optional[str] = None
    contact_detail: Optional[str] = None
    consent_given: Optional[bool] = None
    triggers_history: list[dict[str, Any]] = field(default_factory=list)
    #: Keyed hash of the client address the message came from (bot/core/escalation/flood.py); ``None``: not known.
    client_key: Optional[str] = None
    #: The grouped case of a client address past its cap of urgent escalations (bot/core/escalation/flood.py).
    possible_abuse: bool = False


async def add_audit(
    session: AsyncSession,
    kind: AuditKind,
    *,
    escalation_id: Optional[str] = None,
    sender_id: Optional[str] = None,
    actor: str = "assistant",
    detail: Optional[dict[str, Any]] = None,
) -> AuditEvent:
    """Append one event to the audit log."""
    event = AuditEvent(
        kind=kind, escalation_id=escalation_id, sender_id=sender_id, actor=actor, detail=detail or {}
    )
    session.add(event)
    return event


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name  # type: ignore[union-attr]


def _open_episode(sender_id: str, reason: Reason) -> Any:
    return (Escalation.sender_id == sender_id, Escalation.reason == reason, Escalation.status != Status.resolved)


async def find_escalation(session: AsyncSession, sender_id: str, reason: Reason) -> Optional[Escalation]:
    """The conversation's open escalation for this reason, if any (resolved episodes are history)."""
    result = await session.execute(select(Escalation).where(*_open_episode(sender_id, reason)))
    return result.scalar_one_or_none()


def merge_transcript(stored: list[dict[str, Any]], snapshot: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored transcript followed by the turns of ``snapshot`` it does not hold yet.

    A snapshot is the conversation's latest turns, so it overlaps the end of the stored
    transcript; only what follows the overlap is new. Stored turns are never replaced
    or dropped, and a snapshot already contained in the stored transcript (a late
    replay from the spool) adds nothing.
    """
    keys = [json.dumps(turn, sort_keys=True, default=str) for turn in stored]
    new = [json.dumps(turn, sort_keys=True, default=str) for turn in snapshot]
    if not new:
        return list(stored)
    joined_stored, joined_new = "\x1e".join(keys), "\x1e".join(new)
    if joined_new and ("\x1e" + joined_new + "\x1e") in ("\x1e" + joined_stored + "\x1e"):
        return list(stored)
    for overlap in range(min(len(keys), len(new)), 0, -1):
        if keys[-overlap:] == new[:overlap]:
            return list(stored) + list(snapshot[overlap:])
    return list(stored) + list(snapshot)


class Upserted(NamedTuple):
    """The stored record, whether it was created, and whether this update raised its priority."""

    record: Escalation
    created: bool
    priority_raised: bool = False

    #: Whether the record already held this write (see :class:`Repeat`).
    repeat = False


class Repeat(Upserted):
    """A write for a patient message the open record already holds: nothing was changed."""

    __slots__ = ()
    repeat = True


def written_for(record: Escalation) -> set[str]:
    """The patient messages whose writes the record holds (its trigger's and its history's keys)."""
    trigger = record.trigger if isinstance(record.trigger, dict) else {}
    triggers = [trigger] + [item for item in trigger.get("history") or [] if isinstance(item, dict)]
    return {str(item[WRITE_KEY]) for item in triggers if item.get(WRITE_KEY)}


async def upsert_escalation(session: AsyncSession, data: EscalationInput) -> Upserted:
    """Create the conversation's open escalation for this reason, or merge into it.

    Race-free across processes: ``INSERT ... ON CONFLICT DO NOTHING`` on the partial
    unique index of open episodes, then the open row is read (``FOR UPDATE`` on
    PostgreSQL) and merged. An update adds the new transcript turns, keeps earlier
    triggers in ``trigger["history"]``, counts the occurrence, never lowers the
    priority and never erases contact details. A write for a patient message the record already
    holds (``trigger[WRITE_KEY]``) changes nothing and returns a :class:`Repeat`.

    Returns:
        The record, whether it was created (``False``: merged into the open one), and
        whether the merge raised its priority.
    """
    now = utcnow()
    new_id = str(uuid.uuid4())
    dialect = _dialect(session)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Escalation.__table__)
        .values(
            id=new_id,
            created_at=now,
            updated_at=now,
            sender_id=data.sender_id,
            channel=data.channel,
            reason=data.reason,
            priority=data.priority,
            status=Status.new,
            trigger=data.trigger,
            transcript=data.transcript,
            contact_name=data.contact_name,
            contact_method=data.contact_method,
            contact_detail=data.contact_detail,
            consent_given=data.consent_given,
            consent_at=now if data.consent_given else None,
            occurrences=1,
            client_key=data.client_key,
            possible_abuse=data.possible_abuse,
        )
        .on_conflict_do_nothing(
            # A literal predicate: with a bound parameter, PostgreSQL's generic plan for the prepared
            # statement (from the sixth run on one connection) cannot infer the partial index.
            index_elements=["sender_id", "reason"], index_where=OPEN_EPISODE
        )
    )
    await session.execute(statement)
    query = select(Escalation).where(*_open_episode(data.sender_id, data.reason)).with_for_update()
    record = (await session.execute(query.execution_options(populate_existing=True))).scalar_one()
    if record.id == new_id:
        return Upserted(record, True)
    key = data.trigger.get(WRITE_KEY)
    if key and str(key) in written_for(record):
        return Repeat(record, False)
    earlier = record.priority
    _merge(record, data, now)
    await session.flush()
    return Upserted(record, False, record.priority != earlier)


def _merge(record: Escalation, data: EscalationInput, now: datetime) -> None:
    record.transcript = merge_transcript(record.transcript or [], data.transcript)
    history = list((record.trigger or {}).get("history", []))
    previous = {k: v for k, v in (record.trigger or {}).items() if k != "history"}
    record.trigger = {**data.trigger, "history": (history + [previous])[-TRIGGER_HISTORY_LIMIT:]}
    record.occurrences = (record.occurrences or 1) + 1
    if PRIORITY_ORDER.index(data.priority) > PRIORITY_ORDER.index(record.priority):
        record.priority = data.priority
    for name in ("contact_name", "contact_method", "contact_detail"):
        value = getattr(data, name)
        if value:
            setattr(record, name, value)
    if data.consent_given is not None and data.consent_given != record.consent_given:
        record.consent_given = data.consent_given
        record.consent_at = now if data.consent_given else None
    record.updated_at = now


async def created_since(session: AsyncSession, since: datetime) -> int:
    """How many escalations were created since ``since``, across all conversations."""
    query = select(func.count()).select_from(Escalation).where(Escalation.created_at >= since)
    return (await session.execute(query)).scalar_one()


async def record_unusual_volume(session: AsyncSession, now: datetime, threshold: int) -> Optional[int]:
    """Audit an unusual number of escalations in the last hour, at most once an hour.

    Returns:
        How many were created in the last hour when a new event was recorded, else ``None``.
    """
    since = now - timedelta(hours=1)
    count = await created_since(session, since)
    if count <= threshold:
        return None
    if _dialect(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": VOLUME_LOCK_KEY})
    recent = select(func.count()).select_from(AuditEvent).where(
        AuditEvent.kind == AuditKind.unusual_volume, AuditEvent.created_at >= since
    )
    if (await session.execute(recent)).scalar_one():
        return None
    await add_audit(
        session, AuditKind.unusual_volume, actor="assistant",
        detail={"created_last_hour": count, "warning_threshold": threshold},
    )
    return count


async def enqueue_notification(
    session: AsyncSession, escalation_id: str, transport: str, payload: dict[str, Any], priority: Priority
) -> OutboxMessage:
    """Queue a staff notification; the notifier delivers it with retries, urgent first."""
    message = OutboxMessage(
        escalation_id=escalation_id, transport=transport, payload=payload, priority_rank=PRIORITY_RANK[priority]
    )
    session.add(message)
    return message


def _due(now: datetime) -> Any:
    return (OutboxMessage.status == OutboxStatus.pending, OutboxMessage.next_attempt_at <= now)


async def due_notifications(session: AsyncSession, now: datetime, limit: int = 20) -> Sequence[OutboxMessage]:
    """Pending notifications whose next attempt is due: urgent first, then oldest.

    Rows are locked with ``SKIP LOCKED`` on PostgreSQL so that several
    notifier processes never claim the same message.
    """
    query = (
        select(OutboxMessage)
        .where(*_due(now))
        .order_by(OutboxMessage.priority_rank, OutboxMessage.created_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalars().all()


async def claim_notifications(
    session: AsyncSession, now: datetime, lease: timedelta, limit: int
) -> list[OutboxMessage]:
    """Claim due notifications for one sender: a token, an attempt, and a lease.

    The claimed rows' next attempt moves to ``now + lease``, so rows of a sender that
    dies come back once the lease ends. The caller commits at once and sends outside
    any transaction; only the holder of ``claim_token`` may record the result. The
    conditional update makes the claim safe on SQLite too, where ``SKIP LOCKED`` is
    not available.
    """
    token = str(uuid.uuid4())
    ids = [message.id for message in await due_notifications(session, now, limit)]
    if not ids:
        return []
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), *_due(now))
        .values(claim_token=token, next_attempt_at=now + lease, attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.claim_token == token)
        .order_by(OutboxMessage.priority_rank, OutboxMessage.created_at, OutboxMessage.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(query)).scalars())


async def claimed_notification(session: AsyncSession, message_id: int, token: str) -> Optional[OutboxMessage]:
    """The outbox row if this claim still holds it (its lease was not taken over), locked for the update."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claim_token == token)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


def backoff(attempts: int, base_seconds: float = 30.0, cap_seconds: float = 3600.0) -> timedelta:
    """Delay before the next delivery attempt: exponential, capped."""
    return timedelta(seconds=min(cap_seconds, base_seconds * (2 ** max(0, attempts - 1))))


@dataclass(frozen=True)
class DeliveryFigures:
    """What the health check reports about staff notifications (no patient data)."""

    urgent_undelivered: int
    oldest_urgent_undelivered: Optional[datetime]
    dead: int
    urgent_untold: int
    oldest_urgent_untold: Optional[datetime]


async def delivery_figures(session: AsyncSession, now: datetime, alert_after: timedelta) -> DeliveryFigures:
    """Undelivered urgent notifications, dead letters, and urgent escalations nobody was told of.

    "Untold" escalations are urgent, still ``new`` after ``alert_after`` and have no
    notification sent: what staff miss when no transport is configured.
    """
    urgent_pending = select(func.count(), func.min(OutboxMessage.created_at)).where(
        OutboxMessage.status == OutboxStatus.pending, OutboxMessage.priority_rank == PRIORITY_RANK[Priority.urgent]
    )
    urgent_count, urgent_oldest = (await session.execute(urgent_pending)).one()
    dead = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == OutboxStatus.dead)
    told = select(OutboxMessage.escalation_id).where(OutboxMessage.status == OutboxStatus.sent)
    untold = select(func.count(), func.min(Escalation.created_at)).where(
        Escalation.priority == Priority.urgent,
        Escalation.status == Status.new,
        Escalation.created_at <= now - alert_after,
        Escalation.id.not_in(told),
    )
    untold_count, untold_oldest = (await session.execute(untold)).one()
    return DeliveryFigures(
        urgent_undelivered=urgent_count,
        oldest_urgent_undelivered=urgent_oldest,
        dead=(await session.execute(dead)).scalar_one(),
        urgent_untold=untold_count,
        oldest_urgent_untold=untold_oldest,
    )

