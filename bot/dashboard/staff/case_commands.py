"""What staff do with a case: assign it, move its status, add a note, record the outcome.

Each one transaction: the change and its append-only :class:`AuditEvent`, with the staff
member's username as actor and before/after values, never patient text. Changes are
conditional updates (``UPDATE ... WHERE <the value read>``), so two staff members acting
at once never overwrite each other silently, on SQLite or PostgreSQL: the second is told
the case changed (:class:`~bot.dashboard.staff.case_errors.CaseChanged`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional, Union

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.core import clock
from bot.core.store import chat
from bot.core.store.models import AuditKind, Escalation, Outcome, StaffNote, StaffUser, Status
from bot.core.store.repository import add_audit
from bot.dashboard.staff.case_errors import Actor, CaseChanged, CaseNotFound, InvalidInput, InvalidTransition
from bot.dashboard.staff.case_store import _summaries_query, _summary, valid_id
from bot.dashboard.staff.case_views import TRANSITIONS, CaseSummary, NoteView, _iso

MAX_NOTE_CHARS = 4000
#: Why a case whose chat staff still hold is not resolved (on the page, and from the JSON API).
HAND_BACK_FIRST = ("{name} still {has} the chat: hand it back to the assistant first, then mark the case as "
                   "resolved (a resolved case with the assistant paused would leave the patient unanswered)")
MAX_ATTEMPTS = 50
#: Ids are 32-bit integers in both databases; larger numbers are refused before any query.
MAX_ID = 2**31


async def _current(session: AsyncSession, case_id: str) -> Escalation:
    if not valid_id(case_id):
        raise CaseNotFound("no such escalation")
    query = select(Escalation).where(Escalation.id == case_id).execution_options(populate_existing=True)
    record = (await session.execute(query)).scalar_one_or_none()
    if record is None:
        raise CaseNotFound("no such escalation")
    return record


async def _change(session: AsyncSession, record: Escalation, expected: dict[str, Any], values: dict[str, Any]) -> None:
    """``UPDATE`` the case only if it still holds ``expected``; :class:`CaseChanged` otherwise."""
    conditions = [Escalation.id == record.id]
    for name, value in expected.items():
        column = getattr(Escalation, name)
        conditions.append(column.is_(None) if value is None else column == value)
    statement = (
        update(Escalation).where(*conditions)
        .values(**values, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    if result.rowcount != 1:
        raise CaseChanged("someone else changed this case just now: reload it and try again")


async def _staff(session: AsyncSession, user_id: int) -> StaffUser:
    user = await session.get(StaffUser, user_id)
    if user is None or user.disabled_at is not None:
        raise InvalidInput("no active staff account with this id")
    return user


async def assign(
    sessions: sessionmaker, case_id: str, actor: Actor, assignee_id: Optional[int]
) -> CaseSummary:
    """Give the case to ``assignee_id`` (the actor or a colleague), or to nobody with ``None``.

    Assigning to the current holder changes nothing and audits nothing.
    """
    if assignee_id is not None and (
        not isinstance(assignee_id, int) or isinstance(assignee_id, bool) or not 0 < assignee_id < MAX_ID
    ):
        raise InvalidInput("'assignee_id' must be an account id or null")
    async with sessions() as session:
        async with session.begin():
            record = await _current(session, case_id)
            before = {"assignee_id": record.assignee_id, "assignee": record.assignee}
            if record.assignee_id != assignee_id:
                username = (await _staff(session, assignee_id)).username if assignee_id is not None else None
                await _change(session, record, {"assignee_id": record.assignee_id},
                              {"assignee_id": assignee_id, "assignee": username})
                await add_audit(
                    session, AuditKind.case_assigned, escalation_id=record.id, sender_id=record.sender_id,
                    actor=actor.username,
                    detail={"before": before, "after": {"assignee_id": assignee_id, "assignee": username}},
                )
        return await _summary_of(session, case_id)


async def set_status(sessions: sessionmaker, case_id: str, actor: Actor, status: Union[Status, str]) -> CaseSummary:
    """Move the case along ``new`` -> ``in_progress`` -> ``resolved`` (or back, or reopen it).

    Raises:
        InvalidInput: not a status.
        InvalidTransition: not allowed from the current status, a reopen while the same
            conversation has a newer open escalation for the same reason, or resolving while
            a staff member still holds the case's chat (the assistant would stay paused).
    """
    target = _parse(Status, status, "status")
    async with sessions() as session:
        async with session.begin():
            record = await _current(session, case_id)
            current = Status(record.status)
            if target not in TRANSITIONS[current]:
                raise InvalidTransition(
                    f"a {current.value.replace('_', ' ')} case cannot be set to {target.value.replace('_', ' ')}"
                )
            if current == Status.resolved:
                newer = (await session.execute(
                    select(Escalation.id).where(
                        Escalation.sender_id == record.sender_id, Escalation.reason == record.reason,
                        Escalation.status != Status.resolved, Escalation.id != record.id,
                    )
                )).scalar_one_or_none()
                if newer is not None:
                    raise InvalidTransition(
                        f"this conversation has a newer open escalation for the same reason ({newer}): work on that one"
                    )
            if target == Status.resolved:
                held = await chat.active_takeover(session, record.sender_id)
                if held is not None and held.escalation_id == record.id:
                    mine = held.staff_username == actor.username
                    raise InvalidTransition(HAND_BACK_FIRST.format(name="You" if mine else held.staff_name,
                                                                   has="have" if mine else "has"))
            values: dict[str, Any] = {"status": target}
            if target == Status.resolved:
                values["resolved_at"] = clock.now()
            elif current == Status.resolved:
                values["resolved_at"] = None
            await _change(session, record, {"status": current}, values)
            await add_audit(
                session, AuditKind.status_changed, escalation_id=record.id, sender_id=record.sender_id,
                actor=actor.username, detail={"before": current.value, "after": target.value},
            )
        return await _summary_of(session, case_id)


async def claim(sessions: sessionmaker, case_id: str, actor: Actor) -> None:
    """Staff who start talking to the patient take the case: assigned to them if nobody has
    it, and ``in_progress`` if it was ``new``. A case a colleague holds, or one someone
    changed at the same moment, is left as it is; each change is audited like a manual one."""
    async with sessions() as session:
        async with session.begin():
            record = await _current(session, case_id)
            try:
                if record.assignee_id is None:
                    await _change(session, record, {"assignee_id": None},
                                  {"assignee_id": actor.id, "assignee": actor.username})
                    await add_audit(
                        session, AuditKind.case_assigned, escalation_id=record.id, sender_id=record.sender_id,
                        actor=actor.username,
                        detail={"before": {"assignee_id": None, "assignee": None},
                                "after": {"assignee_id": actor.id, "assignee": actor.username}, "by": "talking"},
                    )
                if Status(record.status) == Status.new:
                    await _change(session, record, {"status": Status.new}, {"status": Status.in_progress})
                    await add_audit(
                        session, AuditKind.status_changed, escalation_id=record.id, sender_id=record.sender_id,
                        actor=actor.username,
                        detail={"before": Status.new.value, "after": Status.in_progress.value, "by": "talking"},
                    )
            except CaseChanged:
                # Someone assigned or moved the case at the same moment: theirs stands.
                return


async def add_note(sessions: sessionmaker, case_id: str, actor: Actor, body: Any) -> NoteView:
    """Add a private note (1 to 4,000 characters) by the actor."""
    if not isinstance(body, str):
        raise InvalidInput("'body' must be text")
    body = body.replace("\x00", "").strip()
    if not body:
        raise InvalidInput("the note is empty")
    if len(body) > MAX_NOTE_CHARS:
        raise InvalidInput(f"a note is limited to {MAX_NOTE_CHARS} characters")
    async with sessions() as session:
        async with session.begin():
            record = await _current(session, case_id)
            note = StaffNote(escalation_id=record.id, author=actor.username, body=body, created_at=clock.now())
            session.add(note)
            await session.flush()
            await _change(session, record, {}, {})
            await add_audit(
                session, AuditKind.note_added, escalation_id=record.id, sender_id=record.sender_id,
                actor=actor.username, detail={"note_id": note.id, "characters": len(body)},
            )
        return NoteView(note.id, note.created_at, note.author, note.body)


async def record_outcome(
    sessions: sessionmaker,
    case_id: str,
    actor: Actor,
    outcome: Union[Outcome, str],
    attempts: Optional[int] = None,
) -> CaseSummary:
    """Record how the case ended, with the number of contact attempts.

    ``attempts`` (0 to 50) sets the count; without it a ``no_answer`` counts one more
    attempt and other outcomes keep the count.
    """
    kind = _parse(Outcome, outcome, "outcome")
    if attempts is not None and (
        not isinstance(attempts, int) or isinstance(attempts, bool) or not 0 <= attempts <= MAX_ATTEMPTS
    ):
        raise InvalidInput(f"'attempts' must be a whole number from 0 to {MAX_ATTEMPTS}")
    async with sessions() as session:
        async with session.begin():
            record = await _current(session, case_id)
            before = {"outcome": record.outcome.value if record.outcome else None, "attempts": record.attempts or 0}
            count = attempts if attempts is not None else (before["attempts"] + (kind == Outcome.no_answer))
            await _change(
                session, record, {"outcome": record.outcome, "attempts": record.attempts},
                {"outcome": kind, "outcome_at": clock.now(), "attempts": count},
            )
            await add_audit(
                session, AuditKind.outcome_recorded, escalation_id=record.id, sender_id=record.sender_id,
                actor=actor.username,
                detail={"before": before, "after": {"outcome": kind.value, "attempts": count}},
            )
        return await _summary_of(session, case_id)


async def _summary_of(session: AsyncSession, case_id: str) -> CaseSummary:
    row = (await session.execute(_summaries_query().where(Escalation.id == case_id))).one()
    return _summary(row, None, clock.now())


def _parse(kind: Any, value: Any, key: str) -> Any:
    if isinstance(value, kind):
        return value
    allowed = [member.value for member in kind]
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"'{key}' must be one of {', '.join(allowed)}")
    return kind(value)


async def audit_export(
    session: AsyncSession, actor: Actor, *, created_from: Optional[datetime], created_to: Optional[datetime],
    rows: int, transcripts: bool,
) -> None:
    """Audit a CSV export: who, which range, how many rows, with or without transcripts."""
    await add_audit(
        session, AuditKind.escalations_exported, actor=actor.username,
        detail={"from": _iso(created_from), "to": _iso(created_to), "rows": rows, "transcripts": transcripts},
    )
