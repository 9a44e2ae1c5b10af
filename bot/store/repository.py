"""Repository functions of the escalation store.

Each takes the session first; the caller owns the transaction
(``async with session.begin():``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import (
    AuditEvent,
    AuditKind,
    Escalation,
    OutboxMessage,
    OutboxStatus,
    Priority,
    Reason,
    Status,
    utcnow,
)

PRIORITY_ORDER = [Priority.normal, Priority.high, Priority.urgent]


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


async def find_escalation(session: AsyncSession, sender_id: str, reason: Reason) -> Optional[Escalation]:
    """The escalation of this conversation for this reason, if any."""
    result = await session.execute(
        select(Escalation).where(Escalation.sender_id == sender_id, Escalation.reason == reason)
    )
    return result.scalar_one_or_none()


async def upsert_escalation(session: AsyncSession, data: EscalationInput) -> tuple[Escalation, bool]:
    """Create the escalation, or update the conversation's existing one for the same reason.

    Returns:
        The record and whether it was created (``False``: updated).
    """
    existing = await find_escalation(session, data.sender_id, data.reason)
    now = utcnow()
    if existing is None:
        record = Escalation(
            sender_id=data.sender_id,
            channel=data.channel,
            reason=data.reason,
            priority=data.priority,
            trigger=data.trigger,
            transcript=data.transcript,
            contact_name=data.contact_name,
            contact_method=data.contact_method,
            contact_detail=data.contact_detail,
            consent_given=data.consent_given,
            consent_at=now if data.consent_given else None,
        )
        session.add(record)
        await session.flush()
        return record, True

    existing.transcript = data.transcript
    history = list((existing.trigger or {}).get("history", []))
    previous = {k: v for k, v in (existing.trigger or {}).items() if k != "history"}
    existing.trigger = {**data.trigger, "history": history + [previous]}
    if PRIORITY_ORDER.index(data.priority) > PRIORITY_ORDER.index(existing.priority):
        existing.priority = data.priority
    if existing.status == Status.resolved:
        existing.status = Status.new
    for name in ("contact_name", "contact_method", "contact_detail"):
        value = getattr(data, name)
        if value:
            setattr(existing, name, value)
    if data.consent_given is not None and data.consent_given != existing.consent_given:
        existing.consent_given = data.consent_given
        existing.consent_at = now if data.consent_given else None
    existing.updated_at = now
    await session.flush()
    return existing, False


async def enqueue_notification(
    session: AsyncSession, escalation_id: str, transport: str, payload: dict[str, Any]
) -> OutboxMessage:
    """Queue a staff notification; the notifier delivers it with retries."""
    message = OutboxMessage(escalation_id=escalation_id, transport=transport, payload=payload)
    session.add(message)
    return message


async def due_notifications(session: AsyncSession, now: datetime, limit: int = 20) -> Sequence[OutboxMessage]:
    """Pending notifications whose next attempt is due, oldest first.

    Rows are locked with ``SKIP LOCKED`` on PostgreSQL so that several
    notifier processes never deliver the same message twice.
    """
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.pending, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).scalars().all()


def backoff(attempts: int, base_seconds: float = 30.0, cap_seconds: float = 3600.0) -> timedelta:
    """Delay before the next delivery attempt: exponential, capped."""
    return timedelta(seconds=min(cap_seconds, base_seconds * (2 ** max(0, attempts - 1))))
