"""The staff JSON API under ``/staff/api/``: everything the dashboard pages do.

Authentication, roles and CSRF come from :mod:`bot.dashboard.web.auth` (its middleware runs
before these handlers: ``request["staff"]`` is the signed-in staff member, a session
or an API token). The OpenAPI 3.1 document (``openapi.yaml`` beside this module) is
served at ``/staff/api/openapi.json``; a test checks it lists exactly the routes the
app registers under ``/staff/api/``.

Free-text search is patient data, so it is sent in a POST body
(``/staff/api/escalations/search``), never in a URL; every other filter is in the
query string. Answers: 400 with a clear message for bad input, 404 for an unknown
escalation, 409 when the case's state forbids the change, 503 when the conversation
store cannot be read; never a 500 for anything a client sends.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

import yaml
from aiohttp import web

from bot.dashboard.staff import cases, export
from bot.dashboard.staff.cases import CaseFilter, InvalidInput
from bot.dashboard.staff.conversation import TrackerReader, TrackerUnavailable
from bot.dashboard.web.keys import CLINIC, DB, SETTINGS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIX = "/staff/api"
CASE = PREFIX + "/escalations/{id:[0-9a-fA-F-]{36}}"
OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.yaml"
#: Reads the whole conversation from Rasa's tracker store (set while the app runs).
TRACKER = web.AppKey("tracker", TrackerReader)
NO_STORE = {"Cache-Control": "no-store"}


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=NO_STORE)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=NO_STORE)


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn case-work errors into JSON answers for the API's routes."""
    if not request.path.startswith(PREFIX + "/"):
        return await handler(request)
    try:
        return await handler(request)
    except InvalidInput as exc:
        return _error(400, "bad_request", str(exc))
    except cases.CaseNotFound:
        return _error(404, "not_found", "No escalation with this id.")
    except (cases.InvalidTransition, cases.CaseChanged) as exc:
        return _error(409, "conflict", str(exc))
    except TrackerUnavailable:
        return _error(503, "unavailable", "The conversation store could not be read. Try again shortly.")


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (or form fields); :class:`InvalidInput` otherwise."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        return {key: value for key, value in form.items() if key != "csrf_token" and isinstance(value, str)}
    if request.content_type != "application/json":
        raise InvalidInput("send a JSON object (Content-Type: application/json)")
    try:
        data = json.loads(await request.text() or "{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data


def _staff(request: web.Request) -> Any:
    return request["staff"]


def _filters(request: web.Request, params: Any) -> CaseFilter:
    return CaseFilter.from_params(params, tz=request.app[CLINIC].tz)


async def list_escalations(request: web.Request) -> web.Response:
    """The queue: filters and paging in the query string."""
    filters = _filters(request, request.query)
    page, per_page = cases.page_params(request.query)
    async with request.app[DB]() as session:
        result = await cases.list_cases(
            session, filters, viewer_id=_staff(request).id, page=page, per_page=per_page,
            clinic=request.app[CLINIC],
        )
    return _json(await _with_activity(request, result.to_dict()))


async def search_escalations(request: web.Request) -> web.Response:
    """The queue searched by free text (in the JSON body, with the same filters as the list)."""
    body = await _body(request)
    search = cases.check_search(body.get("search"))
    if not search:
        raise InvalidInput("'search' is empty")
    raw_filters = body.get("filters") or {}
    if not isinstance(raw_filters, dict):
        raise InvalidInput("'filters' must be an object")
    filters = _filters(request, raw_filters).with_search(search)
    paging = {key: str(body[key]) for key in ("page", "per_page") if body.get(key) is not None}
    page, per_page = cases.page_params(paging)
    async with request.app[DB]() as session:
        result = await cases.list_cases(
            session, filters, viewer_id=_staff(request).id, page=page, per_page=per_page,
            clinic=request.app[CLINIC],
        )
    return _json(await _with_activity(request, result.to_dict()))


async def _with_activity(request: web.Request, page: dict[str, Any]) -> dict[str, Any]:
    """Add each row's latest patient message time from the tracker store (absent if unreadable)."""
    ids = [item["id"] for item in page["items"]]
    if not ids:
        return page
    async with request.app[DB]() as session:
        senders = await cases.sender_ids(session, ids)
    try:
        activity = await request.app[TRACKER].latest_patient_messages(senders.values())
    except TrackerUnavailable:
        activity = {}
    for item in page["items"]:
        latest = activity.get(senders.get(item["id"], ""))
        item["last_patient_message_at"] = latest.at.isoformat() if latest and latest.at else None
    return page


async def counts(request: web.Request) -> web.Response:
    """Cases per status under the query's filters (the status filter ignored)."""
    filters = _filters(request, request.query)
    async with request.app[DB]() as session:
        found = await cases.count_by_status(session, filters, viewer_id=_staff(request).id)
    return _json({"counts": found})


async def colleagues(request: web.Request) -> web.Response:
    """Accounts a case can be assigned to."""
    async with request.app[DB]() as session:
        found = await cases.colleagues(session)
    return _json({"items": [colleague.to_dict() for colleague in found]})


async def get_escalation(request: web.Request) -> web.Response:
    """One case: contact details and consent, trigger, snapshot, notes, audit trail."""
    async with request.app[DB]() as session:
        detail = await cases.get_case(session, request.match_info["id"], clinic=request.app[CLINIC])
    return _json(detail.to_dict())


async def conversation(request: web.Request) -> web.Response:
    """The whole conversation from the tracker store; ``?since=<event id>`` for newer turns only."""
    since_raw = request.query.get("since")
    since: Optional[int] = None
    if since_raw is not None:
        if not since_raw.isdigit() or len(since_raw) > 10 or int(since_raw) >= cases.MAX_ID:
            raise InvalidInput("'since' must be an event id (a whole number)")
        since = int(since_raw)
    async with request.app[DB]() as session:
        detail = await cases.get_case(session, request.match_info["id"])
    found = await request.app[TRACKER].conversation(
        detail.sender_id, escalated_at=detail.summary.created_at, trigger=detail.trigger, since_event_id=since,
    )
    return _json({"escalation_id": detail.id, **found.to_dict()})


async def assign(request: web.Request) -> web.Response:
    """``{"assignee_id": <id> | null}`` or ``{"assignee": "me"}``."""
    body = await _body(request)
    staff = _staff(request)
    if body.get("assignee") == "me":
        assignee_id: Any = staff.id
    elif "assignee_id" in body:
        assignee_id = body["assignee_id"]
        if isinstance(assignee_id, str):  # a form field
            assignee_id = int(assignee_id) if assignee_id.isdigit() and len(assignee_id) < 10 else (
                None if assignee_id in ("", "none") else assignee_id
            )
    else:
        raise InvalidInput("send 'assignee_id' (an account id, or null to unassign) or 'assignee': 'me'")
    summary = await cases.assign(request.app[DB], request.match_info["id"], staff, assignee_id)
    return _json(summary.to_dict())


async def set_status(request: web.Request) -> web.Response:
    """``{"status": "new" | "in_progress" | "resolved"}``."""
    body = await _body(request)
    summary = await cases.set_status(request.app[DB], request.match_info["id"], _staff(request), body.get("status"))
    return _json(summary.to_dict())


async def add_note(request: web.Request) -> web.Response:
    """``{"body": "..."}``: a private note."""
    body = await _body(request)
    note = await cases.add_note(request.app[DB], request.match_info["id"], _staff(request), body.get("body"))
    return _json(note.to_dict(), status=201)


async def record_outcome(request: web.Request) -> web.Response:
    """``{"outcome": "...", "attempts": <0-50, optional>}``."""
    body = await _body(request)
    attempts = body.get("attempts")
    if isinstance(attempts, str):  # a form field
        attempts = None if attempts == "" else int(attempts) if attempts.isdigit() and len(attempts) < 4 else attempts
    summary = await cases.record_outcome(
        request.app[DB], request.match_info["id"], _staff(request), body.get("outcome"), attempts,
    )
    return _json(summary.to_dict())


async def export_csv(request: web.Request) -> web.Response:
    """Escalations created in a date range as CSV: ``?from=YYYY-MM-DD&to=YYYY-MM-DD&transcripts=0|1``."""
    unknown = set(request.query) - {"from", "to", "transcripts"}
    if unknown:
        raise InvalidInput("an export takes only 'from', 'to' and 'transcripts'")
    tz = request.app[CLINIC].tz
    filters = CaseFilter.from_params({key: request.query.getall(key) for key in ("from", "to") if key in request.query},
                                     tz=tz)
    transcripts = request.query.get("transcripts", "0")
    if transcripts not in ("0", "1"):
        raise InvalidInput("'transcripts' must be 0 or 1")
    document, _ = await export.export_csv(
        request.app[DB], _staff(request), filters.created_from, filters.created_to, transcripts=transcripts == "1",
    )
    name = f"escalations-{request.query['from']}-to-{request.query['to']}.csv"
    safe_name = "".join(char for char in name if char.isalnum() or char in "-_.:")
    return web.Response(
        text=document, content_type="text/csv", charset="utf-8",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{safe_name}"'},
    )


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 description (read once from ``openapi.yaml``)."""
    return yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document, as JSON."""
    document = dict(openapi_document())
    document["servers"] = [{"url": request.app[SETTINGS].public_web_url or "/"}]
    return web.json_response(document)


async def tracker_reader(app: web.Application) -> AsyncIterator[None]:
    """The tracker store reader's lifetime (its engine is separate from the escalation store's)."""
    reader = TrackerReader.from_settings(app[SETTINGS])
    app[TRACKER] = reader
    yield
    await reader.close()


def setup(app: web.Application) -> None:
    """Register the API's routes, its error middleware and the tracker reader."""
    app.middlewares.append(api_errors)
    app.cleanup_ctx.append(tracker_reader)
    router = app.router
    router.add_get(PREFIX + "/openapi.json", openapi, name="staff_api_openapi")
    router.add_get(PREFIX + "/escalations", list_escalations, name="staff_api_escalations")
    router.add_post(PREFIX + "/escalations/search", search_escalations, name="staff_api_search")
    router.add_get(PREFIX + "/escalations/counts", counts, name="staff_api_counts")
    router.add_get(PREFIX + "/escalations/export.csv", export_csv, name="staff_api_export")
    router.add_get(PREFIX + "/colleagues", colleagues, name="staff_api_colleagues")
    router.add_get(CASE, get_escalation, name="staff_api_escalation")
    router.add_get(CASE + "/conversation", conversation, name="staff_api_conversation")
    router.add_post(CASE + "/assign", assign, name="staff_api_assign")
    router.add_post(CASE + "/status", set_status, name="staff_api_status")
    router.add_post(CASE + "/notes", add_note, name="staff_api_notes")
    router.add_post(CASE + "/outcome", record_outcome, name="staff_api_outcome")
