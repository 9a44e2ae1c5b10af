"""Reading cases from the escalation store: the queue, its counts, search, one case.

- :func:`list_cases`: filters, text search, the queue order, pagination and counts per status;
- :func:`count_by_status`: the counts alone;
- :func:`get_case`: one case with its notes and audit trail.

Queue order: open urgent cases above everything, then other open cases, then resolved
ones; within each, most urgent first (the decision table's urgency order), then newest.

Text search looks at the contact name and detail and the patient's own words in the
transcript snapshot, case-insensitively (Unicode case folding, the same on SQLite and
PostgreSQL). The database narrows the candidates with a parameterised ``LIKE`` where it
can; Python confirms each match, so assistant text and JSON keys never match.

Every query is parameterised. Search text is patient data: never log it.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Optional, Sequence

from sqlalchemy import and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text as TextType

from bot.core import clock
from bot.core.clinic import Clinic
from bot.core.escalation.flood import unverified
from bot.core.store.models import PRIORITY_RANK, AuditEvent, AuditKind, Escalation, Priority, StaffNote, StaffUser, Status
from bot.dashboard.staff.case_errors import CaseNotFound, InvalidInput
from bot.dashboard.staff.case_query import DEFAULT_PER_PAGE, MAX_PER_PAGE, CaseFilter
from bot.dashboard.staff.case_views import AuditEntry, CaseDetail, CasePage, CaseSummary, Colleague, NoteView
from bot.dashboard.staff.waiting import wait_of

#: Audit events shown with one case (newest kept if there are more).
MAX_AUDIT_EVENTS = 500
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _conditions(filters: CaseFilter, viewer_id: Optional[int], *, with_status: bool = True) -> list[Any]:
    where: list[Any] = []
    if with_status and filters.statuses:
        where.append(Escalation.status.in_(filters.statuses))
    if filters.reasons:
        where.append(Escalation.reason.in_(filters.reasons))
    if filters.priorities:
        where.append(Escalation.priority.in_(filters.priorities))
    if filters.channels:
        where.append(Escalation.channel.in_(filters.channels))
    if filters.created_from is not None:
        where.append(Escalation.created_at >= filters.created_from)
    if filters.created_to is not None:
        where.append(Escalation.created_at < filters.created_to)
    if filters.assignee_id is not None:
        where.append(Escalation.assignee_id == filters.assignee_id)
    if filters.mine:
        if viewer_id is None:
            raise InvalidInput("'mine' needs a signed-in staff member")
        where.append(Escalation.assignee_id == viewer_id)
    if filters.unassigned:
        where.append(Escalation.assignee_id.is_(None))
    return where


def queue_order() -> list[Any]:
    """Open urgent cases first, then other open ones, then resolved; most urgent, then newest."""
    is_open = Escalation.status != Status.resolved
    return [
        case((and_(is_open, Escalation.priority == Priority.urgent), 0), else_=1),
        case((is_open, 0), else_=1),
        case(*[(Escalation.priority == priority, rank) for priority, rank in PRIORITY_RANK.items()], else_=3),
        Escalation.created_at.desc(),
        Escalation.id,
    ]


_SUMMARY_COLUMNS = (
    Escalation.id, Escalation.created_at, Escalation.updated_at, Escalation.channel, Escalation.reason,
    Escalation.priority, Escalation.status, Escalation.occurrences, Escalation.assignee_id, Escalation.assignee,
    Escalation.contact_name, Escalation.contact_method, Escalation.consent_given, Escalation.consent_at,
    Escalation.outcome, Escalation.outcome_at, Escalation.attempts, Escalation.resolved_at,
    Escalation.contact_detail.is_not(None).label("has_contact"), Escalation.possible_abuse,
    StaffUser.username, StaffUser.display_name,
)


def _summary(row: Any, clinic: Optional[Clinic], now: datetime) -> CaseSummary:
    wait = None
    if clinic is not None:
        wait = wait_of(
            clinic, now, created_at=row.created_at, consent_given=row.consent_given, consent_at=row.consent_at,
            outcome=row.outcome.value if row.outcome else None, outcome_at=row.outcome_at,
            resolved_at=row.resolved_at,
        )
    username = row.username or row.assignee
    return CaseSummary(
        id=row.id, created_at=row.created_at, updated_at=row.updated_at, channel=row.channel,
        reason=row.reason, priority=row.priority, status=row.status, occurrences=row.occurrences or 1,
        assignee_id=row.assignee_id, assignee=username,
        assignee_name=(row.display_name or username) if username else None,
        contact_name=row.contact_name, contact_method=row.contact_method, consent_given=row.consent_given,
        outcome=row.outcome, outcome_at=row.outcome_at, attempts=row.attempts or 0,
        resolved_at=row.resolved_at, wait=wait,
        unverified=unverified(row.channel, bool(row.has_contact)),
        possible_abuse=bool(row.possible_abuse),
    )


def _summaries_query() -> Any:
    return select(*_SUMMARY_COLUMNS).outerjoin(StaffUser, StaffUser.id == Escalation.assignee_id)


async def count_by_status(
    session: AsyncSession, filters: CaseFilter = CaseFilter(), *, viewer_id: Optional[int] = None,
    ids: Optional[Sequence[str]] = None,
) -> dict[str, int]:
    """How many cases each status has under ``filters`` (the status filter itself ignored)."""
    where = _conditions(filters, viewer_id, with_status=False)
    if ids is not None:
        if not ids:
            return {status.value: 0 for status in Status}
        where.append(Escalation.id.in_(list(ids)))
    query = select(Escalation.status, func.count()).where(*where).group_by(Escalation.status)
    counts = {status.value: 0 for status in Status}
    for status, number in (await session.execute(query)).all():
        counts[Status(status).value] = number
    return counts


async def list_cases(
    session: AsyncSession,
    filters: CaseFilter = CaseFilter(),
    *,
    viewer_id: Optional[int] = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    clinic: Optional[Clinic] = None,
    now: Optional[datetime] = None,
) -> CasePage:
    """One page of the queue in queue order, with the total and the counts per status.

    ``viewer_id`` is the signed-in staff member (for "mine"); ``clinic`` fills each row's
    wait against the promise (at ``now``, default the clock's).
    """
    page = max(1, page)
    per_page = min(max(1, per_page), MAX_PER_PAGE)
    now = now or clock.now()
    where = _conditions(filters, viewer_id)
    matched: Optional[list[str]] = None
    if filters.search:
        matched = await _search(session, filters, viewer_id)
        if not matched:
            counts = {status.value: 0 for status in Status}
            return CasePage([], 0, page, per_page, counts)
    if matched is None:
        total = (await session.execute(select(func.count()).select_from(Escalation).where(*where))).scalar_one()
        query = _summaries_query().where(*where).order_by(*queue_order())
        query = query.limit(per_page).offset((page - 1) * per_page)
        rows = (await session.execute(query)).all()
        counts = await count_by_status(session, filters, viewer_id=viewer_id)
    else:
        in_status = set(matched)
        if filters.statuses:
            statuses = select(Escalation.id).where(Escalation.id.in_(matched), *where)
            in_status = set((await session.execute(statuses)).scalars())
        ordered = [case_id for case_id in matched if case_id in in_status]
        total = len(ordered)
        page_ids = ordered[(page - 1) * per_page: page * per_page]
        rows = []
        if page_ids:
            query = _summaries_query().where(Escalation.id.in_(page_ids)).order_by(*queue_order())
            rows = (await session.execute(query)).all()
        counts = await count_by_status(session, filters, viewer_id=viewer_id, ids=matched)
    return CasePage([_summary(row, clinic, now) for row in rows], total, page, per_page, counts)


def _like_pattern(term: str) -> Optional[str]:
    """A ``LIKE`` pattern the database can pre-filter with, or ``None`` when only Python can decide.

    JSON text escapes non-ASCII characters, quotes and backslashes, and SQLite's ``lower``
    folds ASCII only: such terms are matched in Python alone.
    """
    if not term.isascii() or any(char in term for char in '"\\') or any(ord(char) < 32 for char in term):
        return None
    escaped = term.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def _patient_words(transcript: Any) -> list[str]:
    words = []
    for turn in transcript or []:
        if isinstance(turn, dict) and turn.get("from") == "patient" and isinstance(turn.get("text"), str):
            words.append(turn["text"])
    return words


def matches(term: str, *, contact_name: Optional[str], contact_detail: Optional[str], transcript: Any) -> bool:
    """Whether ``term`` occurs (case-insensitively) in the contact details or the patient's words."""
    needle = term.casefold()
    haystacks = [contact_name or "", contact_detail or "", *_patient_words(transcript)]
    return any(needle in text.casefold() for text in haystacks)


async def _search(session: AsyncSession, filters: CaseFilter, viewer_id: Optional[int]) -> list[str]:
    """Ids of the cases matching the search text (and every filter but status), in queue order."""
    where = _conditions(filters, viewer_id, with_status=False)
    pattern = _like_pattern(filters.search)
    if pattern is not None:
        where.append(or_(
            func.lower(Escalation.contact_name).like(pattern, escape="!"),
            func.lower(Escalation.contact_detail).like(pattern, escape="!"),
            func.lower(cast(Escalation.transcript, TextType)).like(pattern, escape="!"),
        ))
    query = (
        select(Escalation.id, Escalation.contact_name, Escalation.contact_detail, Escalation.transcript)
        .where(*where).order_by(*queue_order())
    )
    found = []
    for row in (await session.execute(query)).all():
        if matches(filters.search, contact_name=row.contact_name, contact_detail=row.contact_detail,
                   transcript=row.transcript):
            found.append(row.id)
    return found


async def sender_ids(session: AsyncSession, case_ids: Sequence[str]) -> dict[str, str]:
    """The Rasa conversation id of each case (to read the tracker store with)."""
    ids = [case_id for case_id in case_ids if valid_id(case_id)]
    if not ids:
        return {}
    rows = (await session.execute(select(Escalation.id, Escalation.sender_id).where(Escalation.id.in_(ids)))).all()
    return {row.id: row.sender_id for row in rows}


def valid_id(case_id: Any) -> bool:
    """Whether ``case_id`` looks like an escalation id (a UUID)."""
    return isinstance(case_id, str) and bool(_UUID.match(case_id))


async def get_case(
    session: AsyncSession, case_id: str, *, clinic: Optional[Clinic] = None, now: Optional[datetime] = None
) -> CaseDetail:
    """One case with its notes and audit trail; :class:`CaseNotFound` if there is none."""
    if not valid_id(case_id):
        raise CaseNotFound("no such escalation")
    query = _summaries_query().add_columns(
        Escalation.sender_id, Escalation.trigger, Escalation.contact_detail, Escalation.transcript,
    ).where(Escalation.id == case_id)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise CaseNotFound("no such escalation")
    notes = (await session.execute(
        select(StaffNote).where(StaffNote.escalation_id == case_id).order_by(StaffNote.created_at, StaffNote.id)
    )).scalars().all()
    audit_query = (
        select(AuditEvent).where(AuditEvent.escalation_id == case_id)
        .order_by(AuditEvent.id.desc()).limit(MAX_AUDIT_EVENTS)
    )
    events = list(reversed((await session.execute(audit_query)).scalars().all()))
    return CaseDetail(
        summary=_summary(row, clinic, now or clock.now()),
        sender_id=row.sender_id,
        trigger=row.trigger or {},
        contact_detail=row.contact_detail,
        consent_at=row.consent_at,
        transcript=list(row.transcript or []),
        notes=[NoteView(note.id, note.created_at, note.author, note.body) for note in notes],
        audit=[
            AuditEntry(event.id, event.created_at, AuditKind(event.kind).value, event.actor, dict(event.detail or {}))
            for event in events
        ],
    )


async def colleagues(session: AsyncSession) -> list[Colleague]:
    """Accounts that can hold a case (not disabled), by display name."""
    query = select(StaffUser.id, StaffUser.username, StaffUser.display_name).where(StaffUser.disabled_at.is_(None))
    rows = (await session.execute(query)).all()
    found = [Colleague(row.id, row.username, row.display_name or row.username) for row in rows]
    return sorted(found, key=lambda colleague: (colleague.display_name.casefold(), colleague.username))


def new_id() -> str:
    """A fresh escalation id (tests and the bench seed the store with it)."""
    return str(uuid.uuid4())
