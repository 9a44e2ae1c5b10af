"""The staff dashboard's pages: the queue and the conversation view, with their forms.

Routes (all behind :mod:`bot.web.auth`; forms carry the session's CSRF token):

- ``GET /staff/`` (and ``/staff/escalations``): the queue. Filters are a GET form
  (status, reason, priority, channel, dates, assignee, "mine"): none is patient data.
- ``POST /staff/search``: the queue searched by free text. Search terms may be patient
  data, so they travel in a POST body only, never in a URL or a log line.
- ``GET|POST /staff/queue/results``: the queue's results region alone, fetched by the
  page when the event stream (:mod:`bot.web.live`) says something changed.
- ``GET /staff/escalations/{id}``: the whole conversation (Rasa's tracker store) with
  the trigger, contact details and consent, notes and the audit trail.
- ``POST /staff/escalations/{id}/assign|status|notes|outcome``: the same case-work
  functions as the JSON API (:mod:`bot.staff.cases`), then a 303 back to the page.
- ``GET /staff/static/{name}``: the dashboard's stylesheet and scripts (an allow-list).

The web-chat takeover (:mod:`bot.web.takeover`) adds its controls to the conversation
view through :func:`add_case_context` and ``templates/staff/partials/takeover.html``.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Optional
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from sqlalchemy import select

from bot.staff import cases, clock
from bot.staff.cases import CaseDetail, CaseFilter, CaseNotFound, InvalidInput
from bot.staff.conversation import Conversation, TrackerUnavailable, Turn
from bot.store.models import Escalation, Outcome, Priority, Reason, Status
from bot.web import auth, live, presenters
from bot.web.keys import CLINIC, DB

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static" / "staff"
STAFF_ASSETS = web.AppKey("staff_assets", frozenset)
#: Extra context for the conversation view: ``async fn(request, detail) -> dict`` (the takeover uses it).
CaseContext = Callable[[web.Request, CaseDetail], Awaitable[dict[str, Any]]]
CASE_CONTEXT = web.AppKey("staff_case_context", list)

#: The admins' account page (bot/web/admin_users.py), linked from the header when it exists.
ACCOUNTS_ROUTE = "staff_admin_users"
PER_PAGE = 25
CASE_PATH = "/staff/escalations/{id:[0-9a-fA-F-]{36}}"
#: Query keys of the queue's GET form (never search text).
FILTER_KEYS = ("status", "reason", "priority", "channel", "from", "to", "assignee", "mine")
#: Messages after a form's redirect (``?done=<key>``: a fixed word, never data).
DONE = {
    "assigned": "Assignment saved.",
    "unassigned": "The case is no longer assigned to anyone.",
    "status_new": "Status changed to New.",
    "status_in_progress": "Status changed to In progress.",
    "status_resolved": "The case is resolved.",
    "note": "Note added.",
    "outcome": "Outcome recorded.",
}
MARKERS = {
    "paused": "The assistant was paused: clinic staff took over the chat",
    "resumed": "The assistant was resumed",
    "session_started": "A new chat session started",
    "restarted": "The patient restarted the conversation",
}


# --- static assets ----------------------------------------------------------------------


def staff_assets(static: Path = STATIC) -> frozenset[str]:
    """The dashboard files browsers may fetch: its stylesheet and scripts, nothing else."""
    return frozenset(path.name for path in static.iterdir() if path.suffix in (".css", ".js") and path.is_file())


async def static_file(request: web.Request) -> web.FileResponse:
    """``/staff/static/<name>``: one of the listed assets; anything else is a 404."""
    name = request.match_info["name"]
    if name not in request.app[STAFF_ASSETS]:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})


# --- shared ------------------------------------------------------------------------------


async def base_context(request: web.Request) -> dict[str, Any]:
    """What the base template needs besides ``staff`` and ``csrf_token`` (from :mod:`bot.web.auth`).

    A context processor, so the sign-in page gets the clinic's name too.
    """
    accounts = request.app.router.named_resources().get(ACCOUNTS_ROUTE)
    url = str(accounts.url_for()) if accounts else ""
    section = "accounts" if url and request.path.startswith(url) else "queue"
    return {"clinic": request.config_dict[CLINIC], "accounts_url": url, "section": section}


def _staff(request: web.Request) -> auth.StaffIdentity:
    return request[auth.STAFF]


def _params(source: Mapping[str, Any], keys: tuple[str, ...] = FILTER_KEYS) -> MultiDict[str]:
    """The non-empty filter fields of a query string or a form, as a multidict."""
    found: MultiDict[str] = MultiDict()
    for key in keys:
        values = source.getall(key, []) if hasattr(source, "getall") else [source.get(key)]
        for value in values:
            if isinstance(value, str) and value.strip():
                found.add(key, value.strip())
    return found


def _query(params: MultiDict[str], **changes: Optional[str]) -> str:
    """``params`` with some keys replaced (``None`` drops them), as ``?query`` (or ``""``)."""
    items = [(key, value) for key, value in params.items() if key not in changes]
    items += [(key, value) for key, value in changes.items() if value is not None]
    return f"?{urlencode(items)}" if items else ""


# --- the queue ------------------------------------------------------------------------------


async def _channels(session: Any) -> list[str]:
    rows = await session.execute(select(Escalation.channel).distinct().order_by(Escalation.channel))
    return [channel for channel in rows.scalars() if channel]


async def _latest_messages(request: web.Request, session: Any, ids: list[str]) -> dict[str, datetime]:
    """Each case's latest patient message time (empty when the tracker store cannot be read)."""
    tracker = live.tracker_of(request)
    if tracker is None or not ids:
        return {}
    senders = await cases.sender_ids(session, ids)
    try:
        activity = await tracker.latest_patient_messages(senders.values())
    except TrackerUnavailable:
        return {}
    return {
        case_id: activity[sender].at for case_id, sender in senders.items()
        if sender in activity and activity[sender].at is not None
    }


async def queue_context(request: web.Request, source: Mapping[str, Any], search: str = "") -> tuple[dict[str, Any], int]:
    """Everything the queue page and its results region show; the HTTP status (400 for a bad filter)."""
    clinic = request.config_dict[CLINIC]
    staff = _staff(request)
    params = _params(source)
    tab = source.get("status_tab")
    if isinstance(tab, str):  # a status tab pressed on the search results (a POST form)
        params.popall("status", None)
        if tab:
            params.add("status", tab)
    error, status = "", 200
    try:
        filters = CaseFilter.from_params(params, tz=clinic.tz)
        if search:
            filters = filters.with_search(search)
        page, _ = cases.page_params(_params(source, ("page",)) if not isinstance(tab, str) else {})
    except InvalidInput as exc:
        error, status = f"That filter could not be used: {exc}.", 400
        filters, page, params = CaseFilter(), 1, MultiDict()
    now = clock.now()
    async with request.config_dict[DB]() as session:
        result = await cases.list_cases(
            session, filters, viewer_id=staff.id, page=page, per_page=PER_PAGE, clinic=clinic, now=now,
        )
        if result.items == [] and page > result.pages:
            page = result.pages
            result = await cases.list_cases(
                session, filters, viewer_id=staff.id, page=page, per_page=PER_PAGE, clinic=clinic, now=now,
            )
        colleagues = await cases.colleagues(session)
        channels = await _channels(session)
        latest = await _latest_messages(request, session, [item.id for item in result.items])
    rows = [presenters.row_view(item, clinic.tz, now, latest.get(item.id)) for item in result.items]
    current_status = ",".join(status.value for status in filters.statuses)
    tabs = [{"value": "", "label": "All", "count": sum(result.counts.values())}]
    tabs += [{"value": s.value, "label": presenters.STATUSES[s.value], "count": result.counts.get(s.value, 0)}
             for s in Status]
    for tab in tabs:
        tab["current"] = tab["value"] == current_status
        tab["url"] = "/staff/" + _query(params, status=tab["value"] or None, page=None)
    filtered = any(key != "status" for key in params.keys())
    context = {
        "section": "queue",
        "rows": rows,
        "result": result,
        "tabs": tabs,
        "params": params,
        "current_status": current_status,
        "search": filters.search,
        "filtered": filtered,
        "error": error,
        "colleagues": colleagues,
        "channels": sorted(set(channels) | {"socketio", "rest"}),
        "channel_label": presenters.channel_label,
        "reasons": [(r.value, presenters.REASONS[r.value]) for r in Reason],
        "priorities": [(p.value, presenters.PRIORITIES[p.value]) for p in Priority],
        "page_url": lambda number: "/staff/" + _query(params, page=str(number)),
        "plain_url": "/staff/" + _query(params),
        "clear_url": "/staff/" + _query(MultiDict({"status": current_status}) if current_status else MultiDict()),
        "tz_name": clinic.timezone,
    }
    return context, status


async def queue_page(request: web.Request) -> web.Response:
    """GET /staff/: the queue with the query string's filters (search text in a URL is refused)."""
    if "search" in request.query or "q" in request.query:
        context, _ = await queue_context(request, MultiDict())
        context["error"] = "Search with the search box: search words never go in the page address."
        return aiohttp_jinja2.render_template("staff/queue.html", request, context, status=400)
    context, status = await queue_context(request, request.query)
    return aiohttp_jinja2.render_template("staff/queue.html", request, context, status=status)


async def _search_text(request: web.Request) -> tuple[MultiDictProxy[Any], str]:
    form = await request.post()
    raw = form.get("search")
    return form, raw if isinstance(raw, str) else ""


async def search_page(request: web.Request) -> web.Response:
    """POST /staff/search: the queue searched by free text (the text never enters a URL)."""
    form, search = await _search_text(request)
    try:
        search = cases.check_search(search)
    except InvalidInput as exc:
        context, _ = await queue_context(request, form)
        context["error"] = f"The search could not be run: {exc}."
        return aiohttp_jinja2.render_template("staff/queue.html", request, context, status=400)
    if not search:
        raise web.HTTPSeeOther("/staff/" + _query(_params(form)))
    context, status = await queue_context(request, form, search)
    return aiohttp_jinja2.render_template("staff/queue.html", request, context, status=status)


async def queue_results(request: web.Request) -> web.Response:
    """GET|POST /staff/queue/results: the results region alone, for the page's live refresh."""
    if request.method == "POST":
        form, search = await _search_text(request)
        try:
            context, status = await queue_context(request, form, cases.check_search(search))
        except InvalidInput:
            raise web.HTTPBadRequest() from None
    else:
        context, status = await queue_context(request, request.query)
    return aiohttp_jinja2.render_template("staff/partials/queue_results.html", request, context, status=status)


# --- the conversation view ------------------------------------------------------------------


def _turn_view(turn: Turn, tz: Any, now: datetime) -> dict[str, Any]:
    who = {"patient": "Patient", "assistant": "Assistant", "staff": f"{turn.staff_name or 'Clinic staff'} (clinic)"}
    return {
        "kind": turn.kind,
        "marker": MARKERS.get(turn.kind),
        "who": who.get(turn.kind, ""),
        "text": turn.text or "",
        "buttons": list(turn.buttons),
        "time": presenters.clock_time(turn.at, tz, now),
        "time_full": presenters.full_time(turn.at, tz),
        "iso": turn.at.isoformat() if turn.at else "",
        "intent": turn.intent or "",
        "confidence": presenters.percent(turn.confidence),
        "safety": turn.safety or {},
        "trigger": turn.trigger,
        "after": turn.after_escalation,
        "event_id": turn.event_id,
    }


def _snapshot_turns(detail: CaseDetail) -> list[Turn]:
    """The transcript snapshot taken at escalation time, as turns (when the tracker cannot be read)."""
    turns = []
    for number, item in enumerate(detail.transcript):
        if not isinstance(item, dict) or item.get("from") not in ("patient", "assistant"):
            continue
        moment = item.get("time")
        at = datetime.fromtimestamp(moment, tz=timezone.utc) if isinstance(moment, (int, float)) else None
        text = item.get("text") if isinstance(item.get("text"), str) else ""
        turns.append(Turn(number, item["from"], at, text=text, intent=item.get("intent") or None))
    from bot.staff.conversation import mark

    return mark(turns, detail.summary.created_at, detail.trigger)


async def _conversation(request: web.Request, detail: CaseDetail) -> tuple[list[Turn], dict[str, Any]]:
    """The conversation's turns and where they came from (the tracker store, or the snapshot)."""
    tracker = live.tracker_of(request)
    found: Optional[Conversation] = None
    problem = ""
    if tracker is not None:
        try:
            found = await tracker.conversation(
                detail.sender_id, escalated_at=detail.summary.created_at, trigger=detail.trigger,
            )
        except TrackerUnavailable:
            problem = "The conversation store could not be read just now."
    if found is not None and found.available and found.turns:
        return found.turns, {"source": "tracker", "omitted": found.omitted, "last_event_id": found.last_event_id}
    if not problem:
        problem = "The full conversation is not in the conversation store."
    return _snapshot_turns(detail), {"source": "snapshot", "omitted": 0, "last_event_id": 0, "problem": problem}


def _trigger_view(trigger: dict[str, Any]) -> dict[str, Any]:
    """The trigger card's facts (the message itself is patient text: the template escapes it)."""
    model = trigger.get("model_intent")
    terms = trigger.get("matched_terms")
    return {
        "reason": presenters.label(presenters.REASONS, trigger.get("reason")) if trigger.get("reason") else "",
        "intent": trigger.get("intent") or "",
        "confidence": presenters.percent(trigger.get("confidence")),
        "model_intent": model if isinstance(model, str) else "",
        "rerouted": bool(trigger.get("rerouted")),
        "terms": [str(term) for term in terms] if isinstance(terms, list) else [],
        "personal": trigger.get("personal"),
        "third_party": trigger.get("third_party"),
        "message": trigger.get("message") if isinstance(trigger.get("message"), str) else "",
        "repeats": len([item for item in trigger.get("history") or [] if isinstance(item, dict)]),
    }


async def case_context(
    request: web.Request, *, error: str = "", note_draft: str = "",
) -> dict[str, Any]:
    """Everything the conversation view shows; :class:`CaseNotFound` for an unknown id."""
    clinic = request.config_dict[CLINIC]
    now = clock.now()
    async with request.config_dict[DB]() as session:
        detail = await cases.get_case(session, request.match_info["id"], clinic=clinic, now=now)
        colleagues = await cases.colleagues(session)
    turns, source = await _conversation(request, detail)
    views = [_turn_view(turn, clinic.tz, now) for turn in turns]
    first_after = next((index for index, view in enumerate(views) if view["after"]), None)
    summary = detail.summary
    statuses = [
        {"value": status.value,
         "label": presenters.REOPEN if summary.status == Status.resolved else presenters.STATUS_ACTIONS[status.value]}
        for status in detail.allowed_statuses()
    ]
    done = request.query.get("done", "")
    context = {
        "section": "queue",
        "case": detail,
        "summary": summary,
        "row": presenters.row_view(summary, clinic.tz, now),
        "turns": views,
        "first_after": first_after,
        "after_count": sum(1 for view in views if view["after"] and view["kind"] == "patient"),
        "conversation": source,
        "trigger": _trigger_view(detail.trigger),
        "trigger_safety": presenters.verdict_items(
            next((turn.safety for turn in reversed(turns) if turn.trigger and turn.safety), None)
        ),
        "contact_method": presenters.label(presenters.CONTACT_METHODS, summary.contact_method)
        if summary.contact_method else "",
        "consent_at": presenters.clock_time(detail.consent_at, clinic.tz, now),
        "notes": [
            {"author": note.author, "body": note.body, "time": presenters.clock_time(note.created_at, clinic.tz, now),
             "time_full": presenters.full_time(note.created_at, clinic.tz), "iso": note.created_at.isoformat()}
            for note in detail.notes
        ],
        "audit": [
            {"what": presenters.audit_sentence(entry), "actor": entry.actor,
             "time": presenters.clock_time(entry.created_at, clinic.tz, now),
             "time_full": presenters.full_time(entry.created_at, clinic.tz), "iso": entry.created_at.isoformat()}
            for entry in reversed(detail.audit)
        ],
        "statuses": statuses,
        "outcomes": [(o.value, presenters.OUTCOMES[o.value]) for o in Outcome],
        "colleagues": [c for c in colleagues if c.id not in (summary.assignee_id, _staff(request).id)],
        "is_mine": summary.assignee_id == _staff(request).id,
        "done": DONE.get(done, ""),
        "error": error,
        "note_draft": note_draft,
        "max_note": cases.MAX_NOTE_CHARS,
        "max_attempts": cases.MAX_ATTEMPTS,
        "tz_name": clinic.timezone,
    }
    for extra in request.app.get(CASE_CONTEXT, []):
        context.update(await extra(request, detail))
    return context


async def case_page(request: web.Request) -> web.Response:
    """GET /staff/escalations/{id}: the conversation view."""
    try:
        context = await case_context(request)
    except CaseNotFound:
        raise web.HTTPNotFound() from None
    return aiohttp_jinja2.render_template("staff/escalation.html", request, context)


def add_case_context(app: web.Application, provider: CaseContext) -> None:
    """Let another module add to the conversation view's template context (e.g. the takeover's state)."""
    app.setdefault(CASE_CONTEXT, []).append(provider)


# --- the conversation view's forms -------------------------------------------------------------


def _done(case_id: str, key: str, anchor: str = "work") -> web.Response:
    return auth.see_other(f"/staff/escalations/{case_id}?done={key}#{anchor}")


async def _act(request: web.Request, action: Callable[[MultiDictProxy[Any]], Awaitable[web.Response]]) -> web.Response:
    """Run a form's action; a refused change re-renders the page with the reason (and the note draft)."""
    form = await request.post()
    try:
        return await action(form)
    except CaseNotFound:
        raise web.HTTPNotFound() from None
    except cases.CaseError as exc:
        status = 409 if isinstance(exc, (cases.InvalidTransition, cases.CaseChanged)) else 400
        draft = form.get("body") if isinstance(form.get("body"), str) else ""
        message = str(exc)
        context = await case_context(request, error=message[:1].upper() + message[1:], note_draft=draft)
        return aiohttp_jinja2.render_template("staff/escalation.html", request, context, status=status)


async def assign_form(request: web.Request) -> web.Response:
    """POST assign: ``assignee`` = ``me``, ``none`` or a colleague's account id."""
    case_id = request.match_info["id"]

    async def act(form: MultiDictProxy[Any]) -> web.Response:
        value = form.get("assignee")
        staff = _staff(request)
        if value == "me":
            assignee: Optional[int] = staff.id
        elif value == "none":
            assignee = None
        elif isinstance(value, str) and value.isdigit() and len(value) < 10:
            assignee = int(value)
        else:
            raise InvalidInput("choose who should hold the case")
        await cases.assign(request.config_dict[DB], case_id, staff, assignee)
        return _done(case_id, "assigned" if assignee is not None else "unassigned")

    return await _act(request, act)


async def status_form(request: web.Request) -> web.Response:
    """POST status: ``status`` = ``new``, ``in_progress`` or ``resolved``."""
    case_id = request.match_info["id"]

    async def act(form: MultiDictProxy[Any]) -> web.Response:
        summary = await cases.set_status(request.config_dict[DB], case_id, _staff(request), form.get("status"))
        return _done(case_id, f"status_{summary.status.value}")

    return await _act(request, act)


async def note_form(request: web.Request) -> web.Response:
    """POST notes: ``body``, a private note."""
    case_id = request.match_info["id"]

    async def act(form: MultiDictProxy[Any]) -> web.Response:
        await cases.add_note(request.config_dict[DB], case_id, _staff(request), form.get("body"))
        return _done(case_id, "note", anchor="notes")

    return await _act(request, act)


async def outcome_form(request: web.Request) -> web.Response:
    """POST outcome: ``outcome`` and optionally ``attempts`` (contact attempts so far)."""
    case_id = request.match_info["id"]

    async def act(form: MultiDictProxy[Any]) -> web.Response:
        raw = form.get("attempts")
        attempts: Optional[int] = None
        if isinstance(raw, str) and raw.strip():
            if not raw.strip().isdigit() or len(raw.strip()) > 3:
                raise InvalidInput(f"contact attempts must be a whole number from 0 to {cases.MAX_ATTEMPTS}")
            attempts = int(raw.strip())
        await cases.record_outcome(request.config_dict[DB], case_id, _staff(request), form.get("outcome"), attempts)
        return _done(case_id, "outcome")

    return await _act(request, act)


async def staff_root(request: web.Request) -> web.Response:
    """``/staff`` without the slash: the queue."""
    return auth.see_other("/staff/")


def setup(app: web.Application) -> None:
    """Register the pages, their forms, the static assets and the event stream."""
    app[STAFF_ASSETS] = staff_assets()
    app.setdefault(CASE_CONTEXT, [])
    processors = list(app.get(aiohttp_jinja2.APP_CONTEXT_PROCESSORS_KEY, ()))
    if not processors:
        app.middlewares.append(aiohttp_jinja2.context_processors_middleware)
    app[aiohttp_jinja2.APP_CONTEXT_PROCESSORS_KEY] = [*processors, base_context]
    router = app.router
    router.add_get("/staff/static/{name}", static_file, name="staff_static")
    router.add_get("/staff", staff_root, name="staff_root")
    router.add_get("/staff/", queue_page, name="staff_queue")
    router.add_get("/staff/escalations", queue_page, name="staff_escalations")
    router.add_post("/staff/search", search_page, name="staff_search")
    router.add_get("/staff/queue/results", queue_results, name="staff_queue_results")
    router.add_post("/staff/queue/results", queue_results, name="staff_queue_results_search")
    router.add_get(CASE_PATH, case_page, name="staff_case")
    router.add_post(CASE_PATH + "/assign", assign_form, name="staff_case_assign")
    router.add_post(CASE_PATH + "/status", status_form, name="staff_case_status")
    router.add_post(CASE_PATH + "/notes", note_form, name="staff_case_note")
    router.add_post(CASE_PATH + "/outcome", outcome_form, name="staff_case_outcome")
    live.setup(app)
