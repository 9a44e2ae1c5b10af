"""The staff dashboard's pages: the queue, the layout every page shares, and the assets.

Routes (all behind :mod:`bot.dashboard.web.auth`; forms carry the session's CSRF token):

- ``GET /staff/`` (and ``/staff/escalations``): the queue. Filters are a GET form
  (status, reason, priority, channel, dates, assignee, "mine"): none is patient data.
- ``POST /staff/search``: the queue searched by free text. Search terms may be patient
  data, so they travel in a POST body only, never in a URL or a log line.
- ``GET|POST /staff/queue/results``: the queue's results region alone, fetched by the
  page when the event stream (:mod:`bot.dashboard.web.live`) says something changed.
- ``GET /staff/static/{name}``: the dashboard's stylesheet and scripts (an allow-list).
- the conversation view ``/staff/escalations/{id}`` and its forms: :mod:`bot.dashboard.web.case_page`;
  the event stream ``/staff/api/events``: :mod:`bot.dashboard.web.live`.

Other features add to the conversation view with :func:`add_case_context`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Optional

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from sqlalchemy import select

from bot.core import clock
from bot.core.store.models import Escalation, Priority, Reason, Status
from bot.dashboard.staff import accounts as staff_accounts
from bot.dashboard.staff import cases
from bot.dashboard.staff.cases import CaseFilter, InvalidInput
from bot.dashboard.staff.conversation import TrackerUnavailable
from bot.dashboard.web import alert_route, auth, case_page, live, presenters
from bot.dashboard.web.case_page import CASE_CONTEXT, CaseContext, add_case_context  # noqa: F401 - the seam others use
from bot.dashboard.web.keys import CLINIC, DB
from bot.dashboard.web.urls import url_for

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static" / "staff"
STAFF_ASSETS = web.AppKey("staff_assets", frozenset)

#: The admins' account page (bot/dashboard/web/admin_users.py), linked from the header when it exists.
ACCOUNTS_ROUTE = "staff_admin_users"
#: The queue, the page every filter, tab and page link goes to.
QUEUE_ROUTE = "staff_queue"
PER_PAGE = 25
#: Query keys of the queue's GET form (never search text).
FILTER_KEYS = ("status", "reason", "priority", "channel", "from", "to", "assignee", "mine")


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
    """What the base template needs besides ``staff`` and ``csrf_token`` (from :mod:`bot.dashboard.web.auth`).

    A context processor, so the sign-in page gets the clinic's name too.
    """
    accounts = request.app.router.named_resources().get(ACCOUNTS_ROUTE)
    url = str(accounts.url_for()) if accounts else ""
    section = "accounts" if url and request.path.startswith(url) else "queue"
    context: dict[str, Any] = {"clinic": request.config_dict[CLINIC], "accounts_url": url, "section": section}
    identity: Optional[auth.StaffIdentity] = request.get(auth.STAFF)
    # A reception display (bot/dashboard/web/display.py) has no alerts of its own to set: it may not use them.
    if identity is not None and identity.via == "session" and not identity.is_reception:
        context.update(await alerts_context(request, identity))
    return context


#: A well-formed case id the page's alerts replace with a real one to link a notification to its case.
CASE_ID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


async def alerts_context(request: web.Request, identity: auth.StaffIdentity) -> dict[str, Any]:
    """The header's alert settings, the links the page's alerts use, and for admins the no-route banner."""
    async with request.config_dict[DB]() as db:
        chosen = await staff_accounts.alert_settings(db, identity.id)
    return {
        "alert_settings": chosen,
        "current_path": request.path if request.method == "GET" else url_for(request, QUEUE_ROUTE),
        "alerts_url": url_for(request, "staff_api_alerts"),
        "alert_settings_url": url_for(request, ALERT_SETTINGS_ROUTE),
        "case_url_template": url_for(request, case_page.CASE_ROUTE, id=CASE_ID_PLACEHOLDER),
        "case_id_placeholder": CASE_ID_PLACEHOLDER,
        "alert_route_problem": await alert_route.route_problem(request) if identity.is_admin else None,
    }


ALERT_SETTINGS_ROUTE = "staff_alert_settings"


async def alert_settings_form(request: web.Request) -> web.StreamResponse:
    """POST /staff/account/alerts: the account's own alert settings (checkboxes), then back where it was."""
    identity: auth.StaffIdentity = request[auth.STAFF]
    form = await request.post()
    chosen = staff_accounts.AlertSettings(notifications=form.get("notifications") == "on",
                                          sound=form.get("sound") == "on")
    async with request.config_dict[DB]() as db, db.begin():
        await staff_accounts.set_alert_settings(db, identity.id, chosen)
    back = form.get("next")
    if not (isinstance(back, str) and auth.SAFE_NEXT.match(back)):
        back = url_for(request, QUEUE_ROUTE)
    raise web.HTTPSeeOther(back)


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


def _queue_url(request: web.Request, params: MultiDict[str], **changes: Optional[str]) -> str:
    """The queue with ``params`` as its query, some keys replaced (``None`` drops them)."""
    items = [(key, value) for key, value in params.items() if key not in changes]
    items += [(key, value) for key, value in changes.items() if value is not None]
    return url_for(request, QUEUE_ROUTE, query=items)


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
        tab["url"] = _queue_url(request, params, status=tab["value"] or None, page=None)
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
        "page_url": lambda number: _queue_url(request, params, page=str(number)),
        "plain_url": _queue_url(request, params),
        "clear_url": _queue_url(request, MultiDict({"status": current_status}) if current_status else MultiDict()),
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
        raise web.HTTPSeeOther(_queue_url(request, _params(form)))
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


async def staff_root(request: web.Request) -> web.Response:
    """``/staff`` without the slash: the queue."""
    return auth.see_other(url_for(request, QUEUE_ROUTE))


def setup(app: web.Application) -> None:
    """Register the queue, the conversation view and its forms, the static assets and the event stream."""
    app[STAFF_ASSETS] = staff_assets()
    processors = list(app.get(aiohttp_jinja2.APP_CONTEXT_PROCESSORS_KEY, ()))
    if not processors:
        app.middlewares.append(aiohttp_jinja2.context_processors_middleware)
    app[aiohttp_jinja2.APP_CONTEXT_PROCESSORS_KEY] = [*processors, base_context]
    router = app.router
    router.add_get("/staff/static/{name}", static_file, name="staff_static")
    router.add_get("/staff", staff_root, name="staff_root")
    router.add_get("/staff/", queue_page, name=QUEUE_ROUTE)
    router.add_get("/staff/escalations", queue_page, name="staff_escalations")
    router.add_post("/staff/search", search_page, name="staff_search")
    router.add_get("/staff/queue/results", queue_results, name="staff_queue_results")
    router.add_post("/staff/account/alerts", alert_settings_form, name=ALERT_SETTINGS_ROUTE)
    router.add_post("/staff/queue/results", queue_results, name="staff_queue_results_search")
    case_page.setup(app)
    live.setup(app)
