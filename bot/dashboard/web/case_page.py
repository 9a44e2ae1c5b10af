"""The conversation view (``/staff/escalations/{id}``) and its forms.

The page is built for acting: at the top, who the patient is (every name, phone number and
email they gave with consent, and the number they text from: :mod:`bot.dashboard.web.case_who`,
with ``tel:`` and ``mailto:`` links), what triggered the case in words, and the reply/takeover
box; below, the whole conversation, read from Rasa's tracker store
(:mod:`bot.dashboard.staff.conversation`; the snapshot saved with the escalation when the store
cannot be read), with button taps shown as the buttons' titles and the model's intents behind
a details toggle; then contact and consent, private notes and the audit trail.

A case whose chat staff still hold (a live takeover, web chat or text) is not resolved: the
status form refuses with a message saying to hand the chat back first, and the page asks
the same before it posts (``static/staff/escalation.js``). Its forms (assign, status, note, outcome) call the same case-work functions as
the JSON API (:mod:`bot.dashboard.staff.cases`) and answer with a 303 back to the page; a refused
change re-renders the page with the reason, keeping a half-written note.

Other features add to the page through :func:`add_case_context` (the web-chat takeover,
SMS replies) and their own partial templates.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Optional

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from bot.core import clock
from bot.core.escalation import on_call
from bot.core.messaging import store as messaging_store
from bot.core.safety.catalogue import CatalogueError, catalogue_in
from bot.core.store.models import Outcome, Priority, Status
from bot.core.vocabulary import RULES_DIR
from bot.dashboard.staff import cases
from bot.dashboard.staff.cases import CaseDetail, CaseNotFound, InvalidInput
from bot.dashboard.staff.conversation import ContactAnswer, Conversation, TrackerUnavailable, Turn, mark
from bot.dashboard.staff.handoff.service import live_takeover
from bot.dashboard.web import auth, canned_replies, case_who, live, presenters
from bot.dashboard.web.keys import CLINIC, DB
from bot.dashboard.web.urls import url_for

logger = logging.getLogger(__name__)

#: Extra context for the conversation view: ``async fn(request, detail) -> dict``.
CaseContext = Callable[[web.Request, CaseDetail], Awaitable[dict[str, Any]]]
CASE_CONTEXT = web.AppKey("staff_case_context", list)
CASE_PATH = "/staff/escalations/{id:[0-9a-fA-F-]{36}}"
#: The conversation view's route name: links to a case are built from it (:mod:`bot.dashboard.web.urls`).
CASE_ROUTE = "staff_case"
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
#: What the care levels of the red-flag catalogue tell the patient to do.
CARE = {"999": "told the patient to call 999 now", "111": "told the patient to call NHS 111 now"}
MARKERS = {
    "paused": "The assistant was paused: clinic staff took over the chat",
    "resumed": "The assistant was resumed",
    "session_started": "A new chat session started",
    "restarted": "The patient restarted the conversation",
}


def _staff(request: web.Request) -> auth.StaffIdentity:
    return request[auth.STAFF]


# --- the page ------------------------------------------------------------------


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
        "payload": turn.payload or "",
        "tapped": turn.tapped,
        "safety": turn.safety or {},
        "trigger": turn.trigger,
        "after": turn.after_escalation,
        "event_id": turn.event_id,
        "unanswered": turn.unanswered,
        "unanswered_note": turn.unanswered_note,
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


def red_flag_name(red_flag_class: Any) -> str:
    """The red-flag catalogue's name of a class ("Severe allergic reaction (anaphylaxis)"); "" if unknown."""
    if not isinstance(red_flag_class, str) or not red_flag_class:
        return ""
    try:
        found = catalogue_in(RULES_DIR).classes.get(red_flag_class)
    except (CatalogueError, OSError) as exc:
        logger.warning("could not read the red-flag catalogue (%s)", type(exc).__name__)
        found = None
    return found.name if found else red_flag_class.replace("_", " ").capitalize()


def trigger_words(trigger: dict[str, Any], red_flag: bool) -> str:
    """What raised the case, in a sentence: the reason's label, and for a red flag its class and care."""
    reason = presenters.label(presenters.REASONS, trigger.get("reason")) if trigger.get("reason") else ""
    parts = [reason] if reason else []
    flag = red_flag_name(trigger.get("red_flag_class"))
    if flag:
        parts.append(flag)
    elif isinstance(trigger.get("adverse_class"), str) and trigger["adverse_class"] != "unplaced":
        parts.append(trigger["adverse_class"].replace("_", " ").capitalize())
    sentence = ": ".join(parts[:1]) + (f" ({parts[1]})" if len(parts) > 1 else "")
    care = CARE.get(str(trigger.get("care") or ""))
    if red_flag and care:
        sentence += f"; the assistant {care}"
    if trigger.get("third_party"):
        sentence += "; about someone else"
    return sentence


def _about(trigger: dict[str, Any], red_flag: bool) -> str:
    """Whom the message is about; a red flag is never "a general question"."""
    if trigger.get("third_party"):
        return "Someone else (the writer asked about another person)"
    if trigger.get("personal") or red_flag:
        return "The patient's own situation"
    if trigger.get("personal") is False:
        return "A general question"
    return "Not recorded"


def _trigger_view(trigger: dict[str, Any], red_flag: bool = False) -> dict[str, Any]:
    """The trigger card's facts (the message itself is patient text: the template escapes it)."""
    model = trigger.get("model_intent")
    terms = trigger.get("matched_terms")
    return {
        "words": trigger_words(trigger, red_flag),
        "about": _about(trigger, red_flag),
        "red_flag_class": red_flag_name(trigger.get("red_flag_class")),
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


async def _contact_answers(request: web.Request, sender_id: str) -> list[ContactAnswer]:
    tracker = live.tracker_of(request)
    if tracker is None:
        return []
    try:
        return await tracker.contact_answers(sender_id)
    except TrackerUnavailable:
        return []


async def case_context(
    request: web.Request, *, error: str = "", note_draft: str = "",
) -> dict[str, Any]:
    """Everything the conversation view shows; :class:`CaseNotFound` for an unknown id."""
    clinic = request.config_dict[CLINIC]
    now = clock.now()
    async with request.config_dict[DB]() as session:
        detail = await cases.get_case(session, request.match_info["id"], clinic=clinic, now=now)
        colleagues = await cases.colleagues(session)
        sms_usage = await messaging_store.usage(session, detail.sender_id)
        sms_contact = await messaging_store.contact_by_sender(session, detail.sender_id)
    held = await live_takeover(request.config_dict[DB], detail.id)
    turns, source = await _conversation(request, detail)
    summary = detail.summary
    who = case_who.gather(
        await _contact_answers(request, detail.sender_id), case_name=summary.contact_name,
        case_method=summary.contact_method, case_detail=detail.contact_detail, case_consent=summary.consent_given,
        sms_address=sms_contact.address if sms_contact else None,
    )
    views = [_turn_view(turn, clinic.tz, now) for turn in turns]
    first_after = next((index for index, view in enumerate(views) if view["after"]), None)
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
        "trigger": _trigger_view(detail.trigger, summary.red_flag),
        "who": who,
        #: Someone holds the patient's chat (web chat or text): resolving asks to hand back first.
        "live_takeover": {"name": held["name"], "mine": held["username"] == _staff(request).username}
        if held is not None else None,
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
        #: The confirmation sits in the card the form was in, and takes the focus there.
        "done_in": "notes" if done == "note" else "work",
        "error": error,
        "note_draft": note_draft,
        "max_note": cases.MAX_NOTE_CHARS,
        "max_attempts": cases.MAX_ATTEMPTS,
        "tz_name": clinic.timezone,
        #: Texts and SMS segments sent in this conversation (``None``: not a text conversation).
        "sms_usage": sms_usage.to_dict() if sms_usage else None,
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
    if context["summary"].priority == Priority.urgent:
        # The on-call route stops alerting once someone opened the case (bot/core/escalation/on_call.py).
        async with request.config_dict[DB]() as session:
            async with session.begin():
                await on_call.record_opened(session, context["summary"].id, _staff(request).username)
    return aiohttp_jinja2.render_template("staff/escalation.html", request, context)


def add_case_context(app: web.Application, provider: CaseContext) -> None:
    """Let another module add to the conversation view's template context (e.g. the takeover's state)."""
    app.setdefault(CASE_CONTEXT, []).append(provider)


# --- the conversation view's forms -------------------------------------------------------------


def _done(request: web.Request, case_id: str, key: str) -> web.Response:
    # No #fragment: the confirmation takes the focus (autofocus), which a fragment would cancel.
    return auth.see_other(url_for(request, CASE_ROUTE, id=case_id, query={"done": key}))


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
        return _done(request, case_id, "assigned" if assignee is not None else "unassigned")

    return await _act(request, act)


async def status_form(request: web.Request) -> web.Response:
    """POST status: ``status`` = ``new``, ``in_progress`` or ``resolved``."""
    case_id = request.match_info["id"]

    async def act(form: MultiDictProxy[Any]) -> web.Response:
        summary = await cases.set_status(request.config_dict[DB], case_id, _staff(request), form.get("status"))
        return _done(request, case_id, f"status_{summary.status.value}")

    return await _act(request, act)


async def note_form(request: web.Request) -> web.Response:
    """POST notes: ``body``, a private note."""
    case_id = request.match_info["id"]

    async def act(form: MultiDictProxy[Any]) -> web.Response:
        await cases.add_note(request.config_dict[DB], case_id, _staff(request), form.get("body"))
        return _done(request, case_id, "note")

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
        return _done(request, case_id, "outcome")

    return await _act(request, act)


def setup(app: web.Application) -> None:
    """Register the conversation view and its forms."""
    app.setdefault(CASE_CONTEXT, [])
    router = app.router
    router.add_get(CASE_PATH, case_page, name=CASE_ROUTE)
    router.add_post(CASE_PATH + "/assign", assign_form, name="staff_case_assign")
    router.add_post(CASE_PATH + "/status", status_form, name="staff_case_status")
    router.add_post(CASE_PATH + "/notes", note_form, name="staff_case_note")
    router.add_post(CASE_PATH + "/outcome", outcome_form, name="staff_case_outcome")
    # The reply box's canned replies, and the admins' page to edit them.
    canned_replies.setup(app)
