"""Whether one notification transport is delivering now, read from the notification outbox.

Shared by the urgent alert route (:mod:`bot.core.escalation.alerting`) and the on-call
route (:mod:`bot.core.escalation.on_call`), which each ask it about their own transports.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.store import repository as repo
from bot.core.store.models import PRIORITY_RANK, OutboxMessage, OutboxStatus, Priority

#: Most recent failed rows of one transport read to find its latest failure.
FAILED_ROWS_READ = 20


def failed_at(message: OutboxMessage, now: datetime) -> datetime:
    """When a failed message's latest attempt failed, never later than ``now``.

    The notifier records a failure that will be retried by setting ``next_attempt_at`` to
    the failure time plus :func:`bot.core.store.repository.backoff`. A dead message, or one
    claimed again and in flight, keeps its claim's ``next_attempt_at``, which is after the
    failure: reading it as the failure time errs towards "failing".
    """
    if message.status == OutboxStatus.pending and message.claim_token is None:
        return min(now, message.next_attempt_at - repo.backoff(message.attempts))
    return min(now, message.next_attempt_at)


async def transport_problem(
    session: AsyncSession, transport: str, now: datetime, overdue_after: timedelta
) -> Optional[str]:
    """Why ``transport`` is not delivering now (``<transport>_overdue``, ``<transport>_failing``), or ``None``."""
    cutoff = now - overdue_after
    overdue = select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.transport == transport,
        OutboxMessage.status == OutboxStatus.pending,
        or_(
            and_(OutboxMessage.priority_rank == PRIORITY_RANK[Priority.urgent], OutboxMessage.created_at <= cutoff),
            OutboxMessage.next_attempt_at <= cutoff,
        ),
    )
    if (await session.execute(overdue)).scalar_one():
        return f"{transport}_overdue"
    failed = (
        select(OutboxMessage)
        .where(
            OutboxMessage.transport == transport,
            OutboxMessage.status != OutboxStatus.sent,
            OutboxMessage.last_error.is_not(None),
        )
        .order_by(OutboxMessage.id.desc())
        .limit(FAILED_ROWS_READ)
    )
    failures = [failed_at(message, now) for message in (await session.execute(failed)).scalars()]
    if not failures:
        return None
    delivered = select(func.max(OutboxMessage.sent_at)).where(
        OutboxMessage.transport == transport, OutboxMessage.status == OutboxStatus.sent
    )
    last_delivery = (await session.execute(delivered)).scalar_one()
    if last_delivery is None or max(failures) >= last_delivery:
        return f"{transport}_failing"
    return None
