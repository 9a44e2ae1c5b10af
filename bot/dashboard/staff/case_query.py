"""The staff queue's filters, read from query parameters (never from patient text in a URL).

:class:`CaseFilter` is what the queue shows; :meth:`CaseFilter.from_params` parses query-string
parameters with a clear :class:`~bot.dashboard.staff.case_errors.InvalidInput` for anything unacceptable;
:func:`check_search` checks search text (patient data: posted, never logged);
:func:`page_params` reads the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping, Optional, Union
from zoneinfo import ZoneInfo

from bot.core.store.models import Priority, Reason, Status
from bot.dashboard.staff.case_errors import InvalidInput

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_SEARCH_CHARS = 200
MAX_CHANNEL_CHARS = 32


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
