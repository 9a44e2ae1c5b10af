"""Case work on escalations: the staff queue, one case, and what staff do with it.

Queries:
- :func:`list_cases`: filters (status, reason, priority, channel, date range, assignee,
  "mine", unassigned), text search, the queue order, pagination and counts per status;
- :func:`count_by_status`: the counts alone;
- :func:`get_case`: one case with its notes and audit trail.

Actions (each one transaction: the change and its append-only :class:`AuditEvent`, with
the staff member's username as actor and before/after values, never patient text):
:func:`assign`, :func:`set_status`, :func:`add_note`, :func:`record_outcome`.
Changes are conditional updates (``UPDATE ... WHERE <the value read>``), so two staff
members acting at once never overwrite each other silently, on SQLite or PostgreSQL:
the second is told the case changed (:class:`CaseChanged`).

Queue order: open urgent cases above everything, then other open cases, then resolved
ones; within each, most urgent first, then newest.

Text search looks at the contact name and detail and the patient's own words in the
transcript snapshot, case-insensitively (Unicode case folding, the same on SQLite and
PostgreSQL). The database narrows the candidates with a parameterised ``LIKE`` where it
can; Python confirms each match, so assistant text and JSON keys never match.

Every query is parameterised. Search text is patient data: never log it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping, Optional, Protocol, Sequence, Union
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, cast, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker
from sqlalchemy.types import Text as TextType

from bot.clinic import Clinic
from bot.escalation.flood import unverified
from bot.staff import clock
from bot.staff.waiting import Wait, wait_of
from bot.store.models import (
    AuditEvent,
    AuditKind,
    Escalation,
    Outcome,
    Priority,
    Reason,
    StaffNote,
    StaffUser,
    Status,
)
from bot.store.repository import add_audit

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_SEARCH_CHARS = 200
MAX_NOTE_CHARS = 4000
MAX_ATTEMPTS = 50
MAX_CHANNEL_CHARS = 32
#: Ids are 32-bit integers in both databases; larger numbers are refused before any query.
MAX_ID = 2**31
#: Audit events shown with one case (newest kept if there are more).
MAX_AUDIT_EVENTS = 500

#: Allowed status changes: take a case, resolve it, put it back, reopen it.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.new: frozenset({Status.in_progress}),
    Status.in_progress: frozenset({Status.resolved, Status.new}),
    Status.resolved: frozenset({Status.in_progress}),
}
PRIORITY_RANK = {Priority.urgent: 0, Priority.high: 1, Priority.normal: 2}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --- errors ---------------------------------------------------------------------------


class CaseError(Exception):
    """Base of the errors case work reports to staff (the message is safe to show)."""


class CaseNotFound(CaseError):
    """No escalation with this id (or the id is malformed)."""


class InvalidInput(CaseError, ValueError):
    """A filter, note, outcome or assignee staff sent is not acceptable."""


class InvalidTransition(CaseError):
    """The status change is not allowed from the case's current status."""


class CaseChanged(CaseError):
    """Someone else changed the case between reading and writing it: reload and try again."""


class Actor(Protocol):
    """Who acts: ``bot.web.auth.StaffIdentity`` or anything with an id and a username."""

    id: int
    username: str


# --- filters --------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilter:
    """What the queue shows. Empty tuples mean "any"."""

    statuses: tuple[Status, ...] = ()
    reasons: tuple[Reason, ...] = ()
    priorities: tuple[Priority, ...] = ()
    channels: tuple[str, ...] = ()
    #: Created at or after (aware datetime).
    created_from: Optional[datetime] = None
    #: Created before (aware datetime; exclusive).
    created_to: Optional[datetime] = None
    #: Held by this staff account.
    assignee_id: Optional[int] = None
    #: Held by the viewer (``viewer_id`` of :func:`list_cases`).
    mine: bool = False
    #: Held by nobody.
    unassigned: bool = False
    #: Free text (patient data: POST it, never put it in a URL or a log).
    search: str = ""

    def with_search(self, text: str) -> "CaseFilter":
        """The same filter with a (checked) search text."""
        return replace(self, search=check_search(text))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], tz: Union[ZoneInfo, timezone] = timezone.utc) -> "CaseFilter":
        """Parse query-string style parameters; raises :class:`InvalidInput` with a clear message.

        Keys: ``status``, ``reason``, ``priority``, ``channel`` (repeated or comma-separated),
        ``from``/``to`` (``YYYY-MM-DD`` in the clinic's time zone ``tz``, ``to`` inclusive,
        or ISO 8601 date-times), ``assignee`` (an account id, ``me`` or ``none``), ``mine``
        (``1``/``true``). A ``search``/``q`` key is refused: search text goes in a POST body.
        ``params`` may be a dict of strings or lists, or a multidict (``getall``).
        """
        if "search" in params or "q" in params:
            raise InvalidInput("send search text in the body of POST /staff/api/escalations/search, not in the URL")
        statuses = tuple(_enum_values(Status, _values(params, "status"), "status"))
        reasons = tuple(_enum_values(Reason, _values(params, "reason"), "reason"))
        priorities = tuple(_enum_values(Priority, _values(params, "priority"), "priority"))
        channels = tuple(_channels(_values(params, "channel")))
        created_from = _moment(_single(params, "from"), tz, "from", end_of_day=False)
        created_to = _moment(_single(params, "to"), tz, "to", end_of_day=True)
        if created_from and created_to and created_from >= created_to:
            raise InvalidInput("'from' must be before 'to'")
        mine = _flag(_single(params, "mine"), "mine")
        assignee_id, unassigned = None, False
        assignee = _single(params, "assignee")
        if assignee:
            if assignee == "me":
                mine = True
            elif assignee == "none":
                unassigned = True
            elif assignee.isdigit() and len(assignee) < 10:
                assignee_id = int(assignee)
            else:
                raise InvalidInput("'assignee' must be an account id, 'me' or 'none'")
        return cls(
            statuses=statuses, reasons=reasons, priorities=priorities, channels=channels,
            created_from=created_from, created_to=created_to, assignee_id=assignee_id,
            mine=mine, unassigned=unassigned,
        )


def check_search(text: Any) -> str:
    """The search text, trimmed; :class:`InvalidInput` if it is not a string or too long."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InvalidInput("'search' must be a string")
    text = " ".join(text.replace("\x00", "").split())
    if len(text) > MAX_SEARCH_CHARS:
        raise InvalidInput(f"'search' is limited to {MAX_SEARCH_CHARS} characters")
    return text


def page_params(params: Mapping[str, Any]) -> tuple[int, int]:
    """``page`` (from 1) and ``per_page`` (1..100) from query parameters."""
    page = _int(_single(params, "page"), "page", default=1, low=1, high=1_000_000)
    per_page = _int(_single(params, "per_page"), "per_page", default=DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE)
    return page, per_page


def _values(params: Mapping[str, Any], key: str) -> list[str]:
    if hasattr(params, "getall"):
        raw: Iterable[Any] = params.getall(key, [])  # type: ignore[attr-defined]
    else:
        value = params.get(key)
        raw = [] if value is None else value if isinstance(value, (list, tuple)) else [value]
    found: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise InvalidInput(f"'{key}' must be text")
        found += [part.strip() for part in item.split(",") if part.strip()]
    return found


def _single(params: Mapping[str, Any], key: str) -> Optional[str]:
    values = _values(params, key)
    if len(values) > 1:
        raise InvalidInput(f"'{key}' may be given once")
    return values[0] if values else None


def _enum_values(kind: Any, values: list[str], key: str) -> list[Any]:
    allowed = [member.value for member in kind]
    found = []
    for value in values:
        if value not in allowed:
            raise InvalidInput(f"'{key}' must be one of {', '.join(allowed)}")
        found.append(kind(value))
    return list(dict.fromkeys(found))


def _channels(values: list[str]) -> list[str]:
    for value in values:
        if len(value) > MAX_CHANNEL_CHARS or not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise InvalidInput("'channel' must be a channel name such as rest or socketio")
    return list(dict.fromkeys(values))


def _flag(value: Optional[str], key: str) -> bool:
    if value is None or value == "":
        return False
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise InvalidInput(f"'{key}' must be 1 or 0")


def _int(value: Optional[str], key: str, *, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or len(value) > 9 or not low <= int(value) <= high:
        raise InvalidInput(f"'{key}' must be a whole number from {low} to {high}")
    return int(value)


def _moment(value: Optional[str], tz: Union[ZoneInfo, timezone], key: str, *, end_of_day: bool) -> Optional[datetime]:
    """A date (clinic's local day; ``to`` includes the whole day) or an ISO date-time, as aware UTC."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end_of_day:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"'{key}' must be a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(timezone.utc)


# --- views ----------------------------------------------------------------------------


def _iso(moment: Optional[datetime]) -> Optional[str]:
    return moment.isoformat() if moment else None


@dataclass(frozen=True)
class CaseSummary:
    """One row of the queue. Holds the contact name: staff-only data, never for URLs or logs."""

    id: str
    created_at: datetime
    updated_at: datetime
    channel: str
    reason: Reason
    priority: Priority
    status: Status
    occurrences: int
    assignee_id: Optional[int]
    #: The holder's username (also kept in the escalation's ``assignee`` column).
    assignee: Optional[str]
    #: The holder's display name (their username if they have none).
    assignee_name: Optional[str]
    contact_name: Optional[str]
    contact_method: Optional[str]
    consent_given: Optional[bool]
    outcome: Optional[Outcome]
    outcome_at: Optional[datetime]
    attempts: int
    resolved_at: Optional[datetime]
    #: How long the patient has waited against the promise (``None`` without a clinic).
    wait: Optional[Wait] = None
    #: No contact details and not a text message: staff cannot reach the patient (bot/escalation/flood.py).
    unverified: bool = False
    #: The grouped case of a client address past its cap of urgent escalations.
    possible_abuse: bool = False

    @property
    def red_flag(self) -> bool:
        """A red flag (emergency) or otherwise urgent case: it must stand out in the queue."""
        return self.reason == Reason.emergency or self.priority == Priority.urgent

    @property
    def open(self) -> bool:
        """Not resolved yet."""
        return self.status != Status.resolved

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "channel": self.channel,
            "reason": self.reason.value,
            "priority": self.priority.value,
            "status": self.status.value,
            "red_flag": self.red_flag,
            "unverified": self.unverified,
            "possible_abuse": self.possible_abuse,
            "occurrences": self.occurrences,
            "assignee": (
                {"id": self.assignee_id, "username": self.assignee, "display_name": self.assignee_name}
                if self.assignee_id is not None or self.assignee else None
            ),
            "contact": {"name": self.contact_name, "method": self.contact_method, "consent": self.consent_given},
            "outcome": self.outcome.value if self.outcome else None,
            "outcome_at": _iso(self.outcome_at),
            "attempts": self.attempts,
            "resolved_at": _iso(self.resolved_at),
            "wait": self.wait.to_dict() if self.wait else None,
        }


@dataclass(frozen=True)
class NoteView:
    """A private staff note."""

    id: int
    created_at: datetime
    author: str
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": _iso(self.created_at), "author": self.author, "body": self.body}


@dataclass(frozen=True)
class AuditEntry:
    """One event of the case's audit trail (its detail never holds patient text)."""

    id: int
    created_at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": _iso(self.created_at), "kind": self.kind, "actor": self.actor,
                "detail": self.detail}


@dataclass(frozen=True)
class CaseDetail:
    """One case with everything the conversation view shows besides the live conversation."""

    summary: CaseSummary
    #: The Rasa conversation id: read the tracker with it; never put it in a URL.
    sender_id: str
    #: What triggered the escalation: intent, confidence, matched terms, the message, when; ``history``.
    trigger: dict[str, Any]
    contact_detail: Optional[str]
    consent_at: Optional[datetime]
    #: The snapshot taken when the case was escalated (the tracker holds the whole conversation).
    transcript: list[dict[str, Any]]
    notes: list[NoteView] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.summary.id

    def allowed_statuses(self) -> list[Status]:
        """Where the status may go from here (for the buttons)."""
        return sorted(TRANSITIONS[self.summary.status], key=list(Status).index)

    def to_dict(self) -> dict[str, Any]:
        contact = {**self.summary.to_dict()["contact"], "detail": self.contact_detail,
                   "consent_at": _iso(self.consent_at)}
        return {
            **self.summary.to_dict(),
            "contact": contact,
            "trigger": self.trigger,
            "transcript": self.transcript,
            "allowed_statuses": [status.value for status in self.allowed_statuses()],
            "notes": [note.to_dict() for note in self.notes],
            "audit": [entry.to_dict() for entry in self.audit],
        }


@dataclass(frozen=True)
class CasePage:
    """One page of the queue."""

    items: list[CaseSummary]
    total: int
    page: int
    per_page: int
    #: Cases per status under the same filters except the status filter (for the tabs).
    counts: dict[str, int]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [item.to_dict() for item in self.items],
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
            "counts": self.counts,
        }


# --- queries --------------------------------------------------------------------------


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


# --- actions --------------------------------------------------------------------------


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
        InvalidTransition: not allowed from the current status, or a reopen while the same
            conversation has a newer open escalation for the same reason.
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


@dataclass(frozen=True)
class Colleague:
    """A staff account a case can be assigned to."""

    id: int
    username: str
    display_name: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name}


async def colleagues(session: AsyncSession) -> list[Colleague]:
    """Accounts that can hold a case (not disabled), by display name."""
    query = select(StaffUser.id, StaffUser.username, StaffUser.display_name).where(StaffUser.disabled_at.is_(None))
    rows = (await session.execute(query)).all()
    found = [Colleague(row.id, row.username, row.display_name or row.username) for row in rows]
    return sorted(found, key=lambda colleague: (colleague.display_name.casefold(), colleague.username))


def new_id() -> str:
    """A fresh escalation id (tests and the bench seed the store with it)."""
    return str(uuid.uuid4())
