"""The reception display: the live queue on a trusted screen, without patient text.

A reception account (role ``reception``) sees this page and nothing else
(:mod:`bot.dashboard.web.auth` enforces that for every route); staff and admins may open it
too. It lists the open cases (new or in progress), urgent first, then the longest waiting,
each with:

- the patient's **initials** only, computed here from the name they gave (``—`` when they
  gave none, or nothing in it is a letter): never the name, contact details or anything
  the patient wrote;
- the reason, priority and status in the dashboard's words (:mod:`bot.core.vocabulary`);
- how long the case has waited since it was created, which the page keeps counting.

Routes:

- ``GET /staff/display``: the page, rendered with the current rows (it works without
  scripts); ``static/staff/display.js`` then keeps it live.
- ``GET /staff/api/display``: the same rows as JSON, polled by the page every
  :data:`POLL_SECONDS` (with ``X-Live-Refresh: 1``). Besides the rows: the count of
  unopened urgent cases (the on-call route's definition, as the dashboard's tab title
  counts them) and the server's time. No case page link, no patient text, no contact
  detail: :func:`case_rows` reads only the columns it shows (the name, for the initials).

A new urgent case makes the page beep (Web Audio, no file) and the tab title carries the
count, like the rest of the dashboard (whose alerts.js the display does not include: it
has no alert settings form and its notifications open case pages).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import case, func, select

from bot.core import clock
from bot.core.escalation import on_call
from bot.core.store.models import Escalation, Priority, Reason, Status
from bot.core.vocabulary import vocabulary
from bot.dashboard.web import auth
from bot.dashboard.web.keys import DB
from bot.dashboard.web.urls import url_for

PAGE_PATH = "/staff/display"
DATA_PATH = "/staff/api/display"
#: How often the page asks for the rows (seconds).
POLL_SECONDS = 5
#: The most rows the screen lists (the rest is counted: "and 3 more").
MAX_ROWS = 60
#: Open: waiting for staff, or being handled.
OPEN = (Status.new, Status.in_progress)
STATUS_LABELS = {Status.new.value: "Waiting", Status.in_progress.value: "Being handled"}
NO_INITIALS = "—"


def initials(name: Optional[str]) -> str:
    """The first letter of the first and of the last word of ``name``, upper case (``"Ann Lee"`` -> ``"AL"``).

    Only letters count (a phone number typed as a name gives no initials); ``—`` when none.
    """
    words = []
    for word in (name or "").split():
        letter = next((char for char in unicodedata.normalize("NFC", word) if char.isalpha()), None)
        if letter is not None:
            words.append(letter)
    if not words:
        return NO_INITIALS
    chosen = words[:1] + words[1:][-1:]
    return "".join(letter.upper()[:1] for letter in chosen)


def waiting_text(waited: timedelta) -> str:
    """A wait in words for a screen across the room: ``under a minute``, ``12 min``, ``2 h 5 min``, ``3 d 4 h``.

    static/staff/display.js words it the same way while it counts.
    """
    minutes = max(0, int(waited.total_seconds() // 60))
    if minutes < 1:
        return "Under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def is_urgent(reason: Any, priority: Any) -> bool:
    """Urgent as the queue highlights it: an urgent priority, or a possible emergency."""
    return Reason(reason) == Reason.emergency or Priority(priority) == Priority.urgent


@dataclass(frozen=True)
class DisplayRow:
    """One open case as the reception screen shows it: nothing the patient wrote."""

    id: str
    initials: str
    reason: str
    priority: str
    priority_label: str
    status: str
    status_label: str
    urgent: bool
    created_at: datetime
    waiting: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "initials": self.initials, "reason": self.reason, "priority": self.priority,
            "priority_label": self.priority_label, "status": self.status, "status_label": self.status_label,
            "urgent": self.urgent, "created_at": self.created_at.isoformat(), "waiting": self.waiting,
        }


@dataclass(frozen=True)
class Board:
    """What the screen shows at one moment."""

    rows: list[DisplayRow]
    total: int
    unopened_urgent: int
    now: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(), "total": self.total, "more": max(0, self.total - len(self.rows)),
            "unopened_urgent": self.unopened_urgent, "poll_seconds": POLL_SECONDS,
            "cases": [row.as_json() for row in self.rows],
        }


def _urgency_order() -> Any:
    """Urgent first (an emergency or an urgent priority), then by priority rank."""
    ranks = vocabulary().priority_rank
    priority_rank = case(*((Escalation.priority == Priority(name), rank) for name, rank in ranks.items()),
                         else_=len(ranks))
    urgent_first = case(
        ((Escalation.reason == Reason.emergency) | (Escalation.priority == Priority.urgent), 0), else_=1,
    )
    return urgent_first, priority_rank


async def case_rows(session: Any, now: datetime, limit: int = MAX_ROWS) -> Board:
    """The open cases, urgent first then the longest waiting, as :class:`DisplayRow` (see the module docstring)."""
    open_cases = Escalation.status.in_(OPEN)
    query = (
        select(Escalation.id, Escalation.contact_name, Escalation.reason, Escalation.priority,
               Escalation.status, Escalation.created_at)
        .where(open_cases)
        .order_by(*_urgency_order(), Escalation.created_at, Escalation.id)
        .limit(limit)
    )
    found = (await session.execute(query)).all()
    total = int((await session.execute(select(func.count()).select_from(Escalation).where(open_cases))).scalar_one())
    unopened = int((await session.execute(
        select(func.count()).select_from(Escalation).where(on_call.unopened(now)))).scalar_one())
    reasons, priorities = vocabulary().labels, vocabulary().priority_labels
    rows = []
    for row in found:
        reason, priority, status = Reason(row.reason).value, Priority(row.priority).value, Status(row.status).value
        rows.append(DisplayRow(
            id=row.id, initials=initials(row.contact_name),
            reason=reasons.get(reason, reason), priority=priority, priority_label=priorities.get(priority, priority),
            status=status, status_label=STATUS_LABELS.get(status, status), urgent=is_urgent(reason, priority),
            created_at=row.created_at, waiting=waiting_text(now - row.created_at),
        ))
    return Board(rows=rows, total=total, unopened_urgent=unopened, now=now)


async def _board(request: web.Request) -> Board:
    async with request.config_dict[DB]() as session:
        return await case_rows(session, clock.now())


async def display_page(request: web.Request) -> web.Response:
    """GET /staff/display: the reception screen (see the module docstring)."""
    board = await _board(request)
    return aiohttp_jinja2.render_template("staff/display.html", request, {
        "board": board, "poll_seconds": POLL_SECONDS, "data_url": url_for(request, auth.DISPLAY_DATA_ROUTE),
        "login_url": url_for(request, auth.LOGIN_ROUTE), "page_url": url_for(request, auth.DISPLAY_ROUTE),
    })


async def display_data(request: web.Request) -> web.Response:
    """GET /staff/api/display: the screen's rows as JSON (ids, initials and words only)."""
    board = await _board(request)
    return web.json_response(board.as_json(), headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    """Add the display page and its data (the route names :mod:`bot.dashboard.web.auth` lets reception reach)."""
    app.router.add_get(PAGE_PATH, display_page, name=auth.DISPLAY_ROUTE)
    app.router.add_get(DATA_PATH, display_data, name=auth.DISPLAY_DATA_ROUTE)
