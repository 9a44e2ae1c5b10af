"""Store queries for staff in the web chat: takeovers and the lines staff put into a chat.

Both processes use them: the web app writes a takeover and each line before it asks
Rasa to act (durable first); the Rasa process marks a line logged once it is in the
conversation, and delivered once it reached the patient's open chat, claiming it
with a conditional update so a line is emitted once even when the bridge call and
the patient's reconnection race (or run on different replicas). As everywhere in
the store, the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.store.models import ChatLineKind, ChatTakeover, StaffChatLine

#: How long an undelivered line waits for the patient's browser to come back: Rasa's
#: conversation session (domain.yml ``session_expiration_time``, 60 minutes).
PENDING_WINDOW = timedelta(minutes=60)


async def active_takeover(session: AsyncSession, sender_id: str) -> Optional[ChatTakeover]:
    """The open takeover of a conversation, if any."""
    result = await session.execute(
        select(ChatTakeover).where(ChatTakeover.sender_id == sender_id, ChatTakeover.ended_at.is_(None))
    )
    return result.scalars().first()


async def start_takeover(
    session: AsyncSession, *, escalation_id: str, sender_id: str, user_id: Optional[int], username: str,
    name: str, now: datetime,
) -> ChatTakeover:
    """Open a takeover; the partial unique index refuses a second open one for the conversation."""
    row = ChatTakeover(
        escalation_id=escalation_id, sender_id=sender_id, staff_user_id=user_id, staff_username=username,
        staff_name=name, started_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def end_takeover(session: AsyncSession, takeover_id: int, *, by: str, now: datetime) -> bool:
    """Close a takeover that is still open; False if it had already ended."""
    result = await session.execute(
        update(ChatTakeover)
        .where(ChatTakeover.id == takeover_id, ChatTakeover.ended_at.is_(None))
        .values(ended_at=now, ended_by=by)
    )
    return result.rowcount == 1


async def add_line(
    session: AsyncSession, *, escalation_id: str, takeover_id: Optional[int], sender_id: str,
    kind: ChatLineKind, username: str, name: str, body: str, now: datetime,
) -> StaffChatLine:
    """Store a line before anyone tries to send it."""
    row = StaffChatLine(
        escalation_id=escalation_id, takeover_id=takeover_id, sender_id=sender_id, kind=kind,
        author_username=username, author_name=name, body=body, created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def get_line(session: AsyncSession, line_id: int) -> Optional[StaffChatLine]:
    """One line by id."""
    return await session.get(StaffChatLine, line_id)


async def lines_of(session: AsyncSession, escalation_id: str) -> Sequence[StaffChatLine]:
    """The lines staff put into an escalation's chat, oldest first."""
    result = await session.execute(
        select(StaffChatLine).where(StaffChatLine.escalation_id == escalation_id).order_by(StaffChatLine.id)
    )
    return result.scalars().all()


async def mark_logged(session: AsyncSession, line_id: int, now: datetime) -> None:
    """The line is in the conversation's tracker."""
    await session.execute(
        update(StaffChatLine).where(StaffChatLine.id == line_id, StaffChatLine.logged_at.is_(None)).values(logged_at=now)
    )


async def mark_failed(session: AsyncSession, line_id: int, now: datetime) -> None:
    """Rasa could not be reached: the line never entered the conversation and is never delivered later."""
    await session.execute(
        update(StaffChatLine)
        .where(StaffChatLine.id == line_id, StaffChatLine.logged_at.is_(None))
        .values(failed_at=now)
    )


async def claim_delivery(session: AsyncSession, line_id: int, now: datetime) -> bool:
    """Claim a logged, undelivered line for emitting; False if it was delivered already (or never logged)."""
    result = await session.execute(
        update(StaffChatLine)
        .where(
            StaffChatLine.id == line_id,
            StaffChatLine.delivered_at.is_(None),
            StaffChatLine.logged_at.is_not(None),
            StaffChatLine.failed_at.is_(None),
        )
        .values(delivered_at=now)
    )
    return result.rowcount == 1


async def release_delivery(session: AsyncSession, line_id: int) -> None:
    """Undo a claim whose emit failed, so the line goes out when the patient comes back."""
    await session.execute(update(StaffChatLine).where(StaffChatLine.id == line_id).values(delivered_at=None))


async def pending_lines(session: AsyncSession, sender_id: str, now: datetime) -> Sequence[StaffChatLine]:
    """Logged lines of a conversation that have not reached the patient yet, within the session window."""
    result = await session.execute(
        select(StaffChatLine)
        .where(
            StaffChatLine.sender_id == sender_id,
            StaffChatLine.delivered_at.is_(None),
            StaffChatLine.logged_at.is_not(None),
            StaffChatLine.failed_at.is_(None),
            StaffChatLine.created_at >= now - PENDING_WINDOW,
        )
        .order_by(StaffChatLine.id)
    )
    return result.scalars().all()
