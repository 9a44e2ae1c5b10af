"""``/staff/api/events``: server-sent events that keep the dashboard's pages live.

Each open page holds one event stream. The stream polls the databases every
:data:`POLL_SECONDS` rather than listening to anything in this process, so it sees
escalations written by the action server and patient messages stored by any Rasa
replica, whichever web replica the browser reached:

- ``escalation``: an escalation was created or changed (status, assignee, note,
  outcome...): ``{"id", "change": "created"|"updated", "status", "priority", "urgent"}``;
- ``message``: the patient of an escalation wrote in the chat:
  ``{"id", "event_id", "mine"}`` (``id`` is the escalation's; ``mine``: the stream's
  staff member holds the case);
- ``signed-out``: the session ended: ``{"reason": "idle"|"expired"|"ended"}`` (idle
  timeout, the session's maximum lifetime, or sign-out elsewhere / account disabled);
  the stream closes and the page goes to the sign-in page, which says why.

``GET /staff/api/alerts`` (:func:`alert_state`) is what the page's alerts (static/staff/alerts.js)
start from and refresh with: the count of unopened urgent cases (nobody opened its page,
took it or moved it on, and no on-call contact acknowledged it by text; the on-call route's
definition) for the tab title, the account's alert settings, the seconds until the session's
idle sign-out (the one-minute warning), and for admins whether no alert route works.

Events carry ids and categories only, never patient text, names or conversation ids:
the page fetches what it shows through the authenticated pages and API. Every event
has an SSE ``id`` (a resume cursor): a browser that reconnects sends it back as
``Last-Event-ID`` and misses nothing in between.

Rows can become visible out of order (a transaction that started earlier commits
later), so each poll looks a little behind the cursor (:data:`OVERLAP`,
:data:`OVERLAP_EVENTS`) and skips what this stream has already sent.

The stream is not activity: the browser asks for ``text/event-stream``, which
:mod:`bot.dashboard.web.auth` does not count towards the idle timeout, and the stream checks
every :data:`SESSION_CHECK_SECONDS` that its session is still live. An anonymous
request gets 401 (the path is under ``/staff/api/``), which tells the page to sign in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from aiohttp import web
from aiohttp_sse import EventSourceResponse
from sqlalchemy import func, select

from bot.core import clock
from bot.core.escalation import on_call
from bot.core.store import staff_sessions
from bot.core.store.models import Escalation, Priority, Reason, StaffSession, Status
from bot.dashboard.staff import accounts
from bot.dashboard.staff import tokens
from bot.dashboard.staff.conversation import TrackerReader, TrackerUnavailable
from bot.dashboard.web import auth
from bot.dashboard.web import alert_route
from bot.dashboard.web.api import TRACKER
from bot.dashboard.web.keys import DB
from bot.dashboard.web.session_storage import LIVE

logger = logging.getLogger(__name__)

PATH = "/staff/api/events"
ALERTS_PATH = "/staff/api/alerts"
POLL_SECONDS = 2.0
SESSION_CHECK_SECONDS = 10.0
#: A stream is closed after this long; the browser reconnects at once and resumes from its cursor
#: (keeps proxies and load balancers from holding one connection for ever).
MAX_STREAM_SECONDS = 15 * 60
#: How far behind the cursor each poll looks for rows committed late.
OVERLAP = timedelta(seconds=10)
OVERLAP_EVENTS = 200
#: What the browser waits before reconnecting after a dropped connection (milliseconds).
RETRY_MS = 3000
PING_SECONDS = 15
MAX_BATCH = 200
CREATED_WITHIN = timedelta(milliseconds=10)
_CURSOR = re.compile(r"^(\d{1,17})\.(\d{1,15})$")
STREAMS = web.AppKey("staff_event_streams", weakref.WeakSet)


@dataclass
class Cursor:
    """Where a stream is: escalations changed up to ``changed``; tracker events up to ``event_id``."""

    changed: datetime
    event_id: int
    #: What was sent within the overlap window: (escalation id, updated_at) and tracker event ids.
    sent_changes: set[tuple[str, datetime]] = field(default_factory=set)
    sent_events: set[int] = field(default_factory=set)

    def token(self) -> str:
        """The SSE ``id`` for this position: ``<microseconds since epoch>.<event id>``."""
        micros = int(self.changed.timestamp() * 1_000_000)
        return f"{micros}.{self.event_id}"

    @classmethod
    def parse(cls, token: Optional[str], now: datetime) -> Optional["Cursor"]:
        """A cursor from a ``Last-Event-ID``; ``None`` if malformed or implausible."""
        match = _CURSOR.match(token or "")
        if not match:
            return None
        try:
            changed = datetime.fromtimestamp(int(match.group(1)) / 1_000_000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
        # A browser resumes a recent stream; anything older or in the future starts afresh.
        if changed > now + timedelta(minutes=5) or changed < now - timedelta(hours=1):
            return None
        return cls(changed=changed, event_id=int(match.group(2)))

    def prune(self) -> None:
        """Forget what is too far behind the cursor to be read again."""
        horizon = self.changed - OVERLAP
        self.sent_changes = {item for item in self.sent_changes if item[1] >= horizon}
        self.sent_events = {item for item in self.sent_events if item > self.event_id - OVERLAP_EVENTS}


def _urgent(reason: Any, priority: Any) -> bool:
    return Reason(reason) == Reason.emergency or Priority(priority) == Priority.urgent


async def escalation_changes(sessions: Any, cursor: Cursor) -> list[dict[str, Any]]:
    """``escalation`` events for rows changed since the cursor (minus the overlap), oldest first."""
    since = cursor.changed - OVERLAP
    query = (
        select(Escalation.id, Escalation.created_at, Escalation.updated_at, Escalation.status,
               Escalation.priority, Escalation.reason)
        .where(Escalation.updated_at > since)
        .order_by(Escalation.updated_at, Escalation.id)
        .limit(MAX_BATCH)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    events = []
    for row in rows:
        key = (row.id, row.updated_at)
        if key in cursor.sent_changes:
            continue
        cursor.sent_changes.add(key)
        cursor.changed = max(cursor.changed, row.updated_at)
        # Written in one statement, a new row's two times are equal (the ORM's defaults: microseconds apart).
        created = row.updated_at - row.created_at <= CREATED_WITHIN
        events.append({
            "id": row.id,
            "change": "created" if created else "updated",
            "status": Status(row.status).value,
            "priority": Priority(row.priority).value,
            "urgent": _urgent(row.reason, row.priority),
        })
    return events


async def patient_messages(sessions: Any, tracker: Optional[TrackerReader], cursor: Cursor,
                           user_id: Optional[int] = None) -> list[dict[str, Any]]:
    """``message`` events: patient messages since the cursor in conversations that have escalations.

    ``mine`` says whether ``user_id`` holds the escalation (the dashboard alerts its holder).
    """
    if tracker is None:
        return []
    start = max(0, cursor.event_id - OVERLAP_EVENTS)
    try:
        found = await tracker.patient_messages_after(start, limit=MAX_BATCH + OVERLAP_EVENTS)
    except TrackerUnavailable:
        return []
    fresh = [item for item in found if item.event_id not in cursor.sent_events]
    if found:
        cursor.event_id = max(cursor.event_id, max(item.event_id for item in found))
    if not fresh:
        return []
    senders = sorted({item.sender_id for item in fresh})
    async with sessions() as session:
        rows = (await session.execute(
            select(Escalation.id, Escalation.sender_id, Escalation.assignee_id)
            .where(Escalation.sender_id.in_(senders))
        )).all()
    cases: dict[str, list[str]] = {}
    held = set()
    for row in rows:
        cases.setdefault(row.sender_id, []).append(row.id)
        if user_id is not None and row.assignee_id == user_id:
            held.add(row.id)
    events = []
    for item in fresh:
        cursor.sent_events.add(item.event_id)
        for case_id in sorted(cases.get(item.sender_id, ())):
            events.append({"id": case_id, "event_id": item.event_id, "mine": case_id in held})
    return events


async def start_cursor(sessions: Any, request: web.Request, tracker: Optional[TrackerReader]) -> Cursor:
    """Resume from ``Last-Event-ID`` when the browser sends a plausible one, else start now.

    A fresh stream starts after everything already committed: the page it serves was
    rendered from those rows, so the overlap window must not send them again (a page
    reloaded after its own form post would otherwise hear of its own change).
    """
    now = clock.now()
    resumed = Cursor.parse(request.headers.get("Last-Event-ID"), now)
    if resumed is not None:
        return resumed
    event_id = 0
    if tracker is not None:
        with contextlib.suppress(TrackerUnavailable):
            event_id = await tracker.last_event_id()
    cursor = Cursor(changed=now, event_id=event_id)
    await escalation_changes(sessions, cursor)
    await patient_messages(sessions, tracker, cursor)
    return cursor


async def why_signed_out(request: web.Request) -> str:
    """Why the stream's session ended: ``idle``, ``expired`` (its maximum lifetime) or ``ended``."""
    live = request.get(LIVE)
    if live is None:
        return "ended"
    now = clock.now()
    async with request.config_dict[DB]() as db:
        row = (await db.execute(
            select(StaffSession.ended_at, StaffSession.idle_until, StaffSession.expires_at)
            .where(StaffSession.id == live.id)
        )).first()
    if row is None or row.ended_at is not None:
        return "ended"
    if row.expires_at <= now:
        return "expired"
    return "idle" if row.idle_until <= now else "ended"


async def still_signed_in(request: web.Request) -> bool:
    """Whether the stream's session (or API token) still lets its holder in."""
    identity: auth.StaffIdentity = request[auth.STAFF]
    now = clock.now()
    async with request.config_dict[DB]() as db, db.begin():
        if identity.via == "token":
            _, _, token = request.headers.get("Authorization", "").partition(" ")
            return await tokens.authenticate(db, token.strip(), now) is not None
        live = request.get(LIVE)
        return live is not None and await staff_sessions.is_live(db, live.id, now)


def tracker_of(request: web.Request) -> Optional[TrackerReader]:
    """The app's tracker store reader (owned by :mod:`bot.dashboard.web.api`), if the app has one."""
    return request.config_dict.get(TRACKER)


def _gone(request: web.Request) -> bool:
    """Whether the browser closed the connection (checked each poll, so a closed tab costs no more queries)."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def events(request: web.Request) -> web.StreamResponse:
    """GET /staff/api/events: the stream (see the module docstring)."""
    if request.query.get("probe") == "1":
        # The page asks this after the stream failed: 204 means "still signed in, reconnect".
        return web.Response(status=204)
    sessions = request.config_dict[DB]
    identity: auth.StaffIdentity = request[auth.STAFF]
    tracker = tracker_of(request)
    cursor = await start_cursor(sessions, request, tracker)
    response = EventSourceResponse()
    response.ping_interval = PING_SECONDS
    await response.prepare(request)
    streams = request.app.get(STREAMS)
    if streams is not None:
        streams.add(response)
    loop = asyncio.get_running_loop()
    started = last_check = loop.time()
    try:
        await response.send(json.dumps({"poll_seconds": POLL_SECONDS}), event="ready", id=cursor.token(),
                            retry=RETRY_MS)
        while response.is_connected() and not _gone(request):
            if loop.time() - last_check >= SESSION_CHECK_SECONDS:
                last_check = loop.time()
                if not await still_signed_in(request):
                    reason = await why_signed_out(request) if identity.via == "session" else "ended"
                    await response.send(json.dumps({"reason": reason}), event="signed-out")
                    break
            for change in await escalation_changes(sessions, cursor):
                await response.send(json.dumps(change), event="escalation", id=cursor.token())
            for message in await patient_messages(sessions, tracker, cursor, identity.id):
                await response.send(json.dumps(message), event="message", id=cursor.token())
            cursor.prune()
            if loop.time() - started >= MAX_STREAM_SECONDS:
                break
            await asyncio.sleep(POLL_SECONDS)
    except ConnectionResetError:
        pass  # the browser went away
    except Exception:  # noqa: BLE001 - a stream must end quietly; the browser reconnects
        logger.exception("event stream failed")
    finally:
        with contextlib.suppress(RuntimeError):
            response.stop_streaming()
    return response


def _unopened_urgent(now: datetime) -> Any:
    """Urgent cases nobody has opened, as the on-call route counts them (:mod:`bot.core.escalation.on_call`)."""
    # One definition of "unopened" for the title and the on-call rounds.
    return select(func.count()).select_from(Escalation).where(on_call.unopened(now))


async def alert_state(request: web.Request) -> web.Response:
    """GET /staff/api/alerts: what the page's alerts need (see the module docstring). Ids and counts only."""
    identity: auth.StaffIdentity = request[auth.STAFF]
    async with request.config_dict[DB]() as db:
        unopened = int((await db.execute(_unopened_urgent(clock.now()))).scalar_one())
        chosen = await accounts.alert_settings(db, identity.id)
    live = request.get(LIVE)
    idle_left = None
    if live is not None:
        idle_left = max(0, int((live.idle_until - clock.now()).total_seconds()))
    state: dict[str, Any] = {
        "unopened_urgent": unopened,
        "notifications": chosen.notifications,
        "sound": chosen.sound,
        "idle_seconds_left": idle_left,
    }
    if identity.is_admin:
        problem = await alert_route.route_problem(request)
        state["alert_route_problem"] = problem
    return web.json_response(state, headers={"Cache-Control": "no-store"})


async def close_streams(app: web.Application) -> None:
    """On shutdown: end every open stream so the server does not wait for them."""
    for response in list(app[STREAMS]):
        with contextlib.suppress(RuntimeError):
            response.stop_streaming()


def setup(app: web.Application) -> None:
    """Add the event stream route."""
    app[STREAMS] = weakref.WeakSet()
    alert_route.setup(app)
    app.on_shutdown.append(close_streams)
    app.router.add_get(PATH, events, name="staff_events")
    app.router.add_get(ALERTS_PATH, alert_state, name="staff_api_alerts")
