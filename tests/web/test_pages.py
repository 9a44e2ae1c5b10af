"""The dashboard's pages: the queue and the conversation view, their forms and assets.

The app runs on the test's own SQLite store and a SQLite tracker store shaped like
Rasa's (table ``events``), so the conversation view reads a whole conversation the
way it does in production.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import select

from bot.core.settings import Settings
from bot.core.store.models import AuditEvent, AuditKind, Escalation, Priority, Reason, StaffNote, Status
from bot.core.store.repository import EscalationInput, add_audit, upsert_escalation
from tests.web.conftest import signed_in_client

XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('patient')</script>"


@pytest.fixture
def tracker_db(tmp_path) -> Path:
    """An empty tracker store with Rasa's ``events`` table."""
    path = tmp_path / "tracker.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, sender_id VARCHAR(255) NOT NULL, "
            "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
            "action_name VARCHAR(255), data TEXT)"
        )
    return path


@pytest.fixture
def staff_settings(tmp_path, db_url, tracker_db) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=db_url,
        tracker_store_url=f"sqlite:///{tracker_db}",
        public_web_url="http://127.0.0.1:8000",
        session_secret="test-session-secret",
        notify_interval_seconds=3600,
    )


def say(tracker_db: Path, sender: str, kind: str, text: str, at: float, **parse: object) -> int:
    """Store one tracker event (``user`` or ``bot``) as Rasa's SQL tracker store does; returns its id."""
    if kind == "user":
        data = {"event": "user", "timestamp": at, "text": text,
                "parse_data": {"intent": {"name": parse.get("intent", "faq"), "confidence": 0.91},
                               "safety": parse.get("safety", {})}}
    else:
        data = {"event": "bot", "timestamp": at, "text": text, "data": {}, "metadata": {}}
    with sqlite3.connect(tracker_db) as db:
        cursor = db.execute(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) VALUES (?,?,?,?,?,?)",
            (sender, kind, at, parse.get("intent"), None, json.dumps(data)),
        )
        return int(cursor.lastrowid)


async def escalate(staff_db, sender: str = "s-1", *, reason: Reason = Reason.human_request,
                   priority: Priority = Priority.normal, name: str | None = "Alex Patient",
                   message: str = "can I talk to someone", channel: str = "socketio") -> str:
    data = EscalationInput(
        sender_id=sender, channel=channel, reason=reason, priority=priority,
        trigger={"reason": reason.value, "intent": "human_handoff", "confidence": 0.87,
                 "matched_terms": ["chest pain"] if reason == Reason.emergency else [],
                 "personal": True, "message": message, "at": datetime.now(timezone.utc).isoformat()},
        transcript=[{"from": "patient", "text": message, "time": time.time() - 60}],
        contact_name=name, contact_method="phone" if name else None,
        contact_detail="+442079460958" if name else None, consent_given=bool(name),
    )
    async with staff_db() as session, session.begin():
        stored = await upsert_escalation(session, data)
        await add_audit(session, AuditKind.escalation_created, escalation_id=stored.record.id, sender_id=sender,
                        detail={"reason": reason.value})
        return stored.record.id


def case_form(client, case_id: str, action: str, **fields: str):
    return client.post(f"/staff/escalations/{case_id}/{action}", data={"csrf_token": client.csrf, **fields},
                       allow_redirects=False)


# --- the queue -------------------------------------------------------------------------------


async def test_queue_lists_escalations_with_plain_words(staff_client, staff_db):
    await escalate(staff_db, "s-1", name="Alex Patient")
    reply = await staff_client.get("/staff/")
    page = await reply.text()
    assert reply.status == 200
    assert "Alex Patient" in page
    assert "Asked to talk to someone" in page
    assert "Website chat" in page
    assert "Sam Staff" in page  # the header names who is signed in
    assert '<meta name="csrf-token" content="' + staff_client.csrf + '">' in page


async def test_red_flag_rows_say_urgent_in_words_with_an_icon_and_a_row_mark(staff_client, staff_db):
    urgent = await escalate(staff_db, "s-red", reason=Reason.emergency, priority=Priority.urgent, name="Red Flag")
    normal = await escalate(staff_db, "s-calm", name="Calm Question")
    page = await (await staff_client.get("/staff/")).text()
    red_row = re.search(rf'<tr id="row-{urgent}"[^>]*>(.*?)</tr>', page, re.S)
    calm_row = re.search(rf'<tr id="row-{normal}"[^>]*>(.*?)</tr>', page, re.S)
    assert red_row and calm_row
    assert 'class="is-urgent' in red_row.group(0)
    assert "<svg" in red_row.group(1) and "Urgent" in red_row.group(1)
    assert "Urgent" not in calm_row.group(1) and "is-urgent" not in calm_row.group(0)
    assert page.index(f"row-{urgent}") < page.index(f"row-{normal}")  # urgent first


async def test_contact_name_with_markup_is_shown_literally_in_the_queue(staff_client, staff_db):
    await escalate(staff_db, "s-x", name=XSS)
    page = await (await staff_client.get("/staff/")).text()
    assert XSS not in page
    assert escape(XSS) in page


async def test_filters_narrow_the_queue(staff_client, staff_db):
    await escalate(staff_db, "s-red", reason=Reason.emergency, priority=Priority.urgent, name="Red Flag")
    await escalate(staff_db, "s-calm", name="Calm Question", channel="rest")
    page = await (await staff_client.get("/staff/?reason=emergency")).text()
    assert "Red Flag" in page and "Calm Question" not in page
    page = await (await staff_client.get("/staff/?channel=rest")).text()
    assert "Calm Question" in page and "Red Flag" not in page
    page = await (await staff_client.get("/staff/?status=resolved")).text()
    assert "No escalations match" in page


async def test_status_tabs_show_counts(staff_client, staff_db):
    await escalate(staff_db, "s-1", name="One")
    await escalate(staff_db, "s-2", name="Two")
    page = await (await staff_client.get("/staff/")).text()
    assert re.search(r'id="tab-new" href="[^"]*">New <span class="count">2</span>', page)
    assert re.search(r'id="tab-all" href="[^"]*" aria-current="page">All <span class="count">2</span>', page)


async def test_mine_shows_only_cases_assigned_to_me(staff_client, staff_db):
    mine = await escalate(staff_db, "s-1", name="Mine Case")
    await escalate(staff_db, "s-2", name="Other Case")
    assert (await case_form(staff_client, mine, "assign", assignee="me")).status == 303
    page = await (await staff_client.get("/staff/?mine=1")).text()
    assert "Mine Case" in page and "Other Case" not in page


async def test_a_bad_filter_is_explained_not_a_crash(staff_client):
    reply = await staff_client.get("/staff/?status=lost&from=yesterday")
    assert reply.status == 400
    assert "That filter could not be used" in await reply.text()


async def test_search_text_is_refused_in_the_query_string(staff_client):
    reply = await staff_client.get("/staff/?search=Alex")
    assert reply.status == 400
    assert "search words never go in the page address" in await reply.text()


async def test_search_is_a_post_and_its_text_never_reaches_a_url(staff_client, staff_db):
    await escalate(staff_db, "s-1", name="Alex Patient")
    await escalate(staff_db, "s-2", name="Blake Other")
    reply = await staff_client.post(
        "/staff/search", data={"csrf_token": staff_client.csrf, "search": "alex"}, allow_redirects=False,
    )
    page = await reply.text()
    assert reply.status == 200
    assert "Alex Patient" in page and "Blake Other" not in page
    assert "Location" not in reply.headers
    assert not re.search(r'(href|action)="[^"]*alex', page, re.I)


async def test_search_needs_the_csrf_token(staff_client):
    reply = await staff_client.post("/staff/search", data={"search": "alex"}, allow_redirects=False)
    assert reply.status == 403


async def test_results_region_alone_for_the_live_refresh(staff_client, staff_db):
    await escalate(staff_db, "s-1", name="Alex Patient")
    reply = await staff_client.get("/staff/queue/results?reason=human_request",
                                   headers={"X-Live-Refresh": "1"})
    page = await reply.text()
    assert reply.status == 200
    assert page.lstrip().startswith('<div id="queue-results"')
    assert "Alex Patient" in page and "<html" not in page


async def test_queue_says_when_the_patient_wrote_again_after_the_escalation(staff_client, staff_db, tracker_db):
    say(tracker_db, "s-1", "user", "can I talk to someone", time.time() - 30)
    await escalate(staff_db, "s-1", name="Quiet Patient")
    assert "Wrote again" not in await (await staff_client.get("/staff/")).text()
    say(tracker_db, "s-1", "user", "hello? anyone there?", time.time() + 10)
    assert "Wrote again" in await (await staff_client.get("/staff/")).text()


async def test_anonymous_visitors_are_sent_to_sign_in(anon_client):
    reply = await anon_client.get("/staff/", allow_redirects=False)
    assert reply.status == 303
    assert reply.headers["Location"].startswith("/staff/login")


# --- the conversation view ---------------------------------------------------------------------


async def test_conversation_view_shows_the_whole_conversation_from_the_tracker(staff_client, staff_db, tracker_db):
    start = time.time() - 600
    say(tracker_db, "s-1", "user", "hello", start)
    say(tracker_db, "s-1", "bot", "Hi, I'm the clinic's automated assistant.", start + 1)
    say(tracker_db, "s-1", "user", "can I talk to someone", start + 2, intent="human_handoff")
    case_id = await escalate(staff_db, "s-1")
    say(tracker_db, "s-1", "user", "are you still there?", time.time() + 1)
    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()
    assert "hello" in page and "automated assistant" in page
    assert "are you still there?" in page
    assert page.index("Escalated here") < page.index("are you still there?")
    assert "The patient wrote 1 message after the escalation." in page
    assert "This message triggered the escalation" in page
    assert "+442079460958" in page and "Agreed to be contacted" in page
    assert "Escalation created" in page  # the audit trail


async def test_patient_text_and_names_with_markup_stay_inert(staff_client, staff_db, tracker_db):
    say(tracker_db, "s-x", "user", XSS, time.time() - 5)
    say(tracker_db, "s-x", "user", SCRIPT, time.time() - 4)
    case_id = await escalate(staff_db, "s-x", name=XSS, message=XSS)
    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()
    assert XSS not in page and SCRIPT not in page
    assert escape(XSS) in page and escape(SCRIPT) in page
    assert "<script>" not in page.replace('<script src="/staff/static/', "")


async def test_page_title_keeps_patient_names_out_of_browser_history(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-1", name="Alex Patient")
    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "Alex" not in title and case_id[:8] in title


async def test_trigger_shows_intent_confidence_and_matched_terms(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-red", reason=Reason.emergency, priority=Priority.urgent,
                             message="I have chest pain after needling")
    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()
    trigger = page[page.index('id="trigger-heading"'):page.index('id="conversation"')]
    assert "human_handoff" in trigger and "87% confidence" in trigger
    assert "<li>chest pain</li>" in trigger
    assert "I have chest pain after needling" in trigger
    assert "Urgent: a red flag" in page


async def test_snapshot_is_shown_when_the_tracker_has_nothing(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-none", message="only in the snapshot")
    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()
    assert "only in the snapshot" in page
    assert "Showing the copy saved when the case was escalated" in page


async def test_unknown_case_is_404(staff_client):
    reply = await staff_client.get("/staff/escalations/00000000-0000-0000-0000-000000000000")
    assert reply.status == 404


# --- the forms -----------------------------------------------------------------------------------


async def audit_of(staff_db, case_id: str) -> list[tuple[AuditKind, str]]:
    async with staff_db() as session:
        rows = await session.execute(
            select(AuditEvent.kind, AuditEvent.actor).where(AuditEvent.escalation_id == case_id).order_by(AuditEvent.id)
        )
        return [(AuditKind(kind), actor) for kind, actor in rows.all()]


async def test_assign_status_note_and_outcome_each_land_in_the_audit_trail(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-1")
    steps = [
        ("assign", {"assignee": "me"}, "assigned", "Assigned to sam"),
        ("status", {"status": "in_progress"}, "status_in_progress", "Status changed from New to In progress"),
        ("notes", {"body": "Called, left a voicemail. " + XSS}, "note", "Private note added"),
        ("outcome", {"outcome": "no_answer", "attempts": ""}, "outcome", "Outcome recorded: No answer (1 contact attempt)"),
        ("status", {"status": "resolved"}, "status_resolved", "Status changed from In progress to Resolved"),
    ]
    for action, fields, done, sentence in steps:
        reply = await case_form(staff_client, case_id, action, **fields)
        assert reply.status == 303, await reply.text()
        assert reply.headers["Location"].startswith(f"/staff/escalations/{case_id}?done={done}")
        page = await (await staff_client.get(reply.headers["Location"])).text()
        audit = page[page.index('id="audit-heading"'):]
        assert sentence in audit
        assert "by sam" in audit
    assert escape(XSS) in page and XSS not in page  # the note, escaped
    kinds = [kind for kind, actor in await audit_of(staff_db, case_id) if actor == "sam"]
    assert kinds == [AuditKind.case_assigned, AuditKind.status_changed, AuditKind.note_added,
                     AuditKind.outcome_recorded, AuditKind.status_changed]


async def test_assign_to_a_colleague(staff_client, staff_db, make_user):
    colleague = await make_user("robin", display_name="Robin Physio")
    case_id = await escalate(staff_db, "s-1")
    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()
    assert f'<option value="{colleague.id}">Robin Physio (robin)</option>' in page
    reply = await case_form(staff_client, case_id, "assign", assignee=str(colleague.id))
    assert reply.status == 303
    async with staff_db() as session:
        record = await session.get(Escalation, case_id)
    assert record.assignee_id == colleague.id and record.assignee == "robin"


async def test_forms_without_the_csrf_token_are_refused(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-1")
    reply = await staff_client.post(f"/staff/escalations/{case_id}/notes", data={"body": "hi"}, allow_redirects=False)
    assert reply.status == 403
    async with staff_db() as session:
        assert (await session.execute(select(StaffNote))).first() is None


async def test_a_refused_change_is_explained_and_keeps_the_draft_note(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-1")
    reply = await case_form(staff_client, case_id, "status", status="resolved")  # new -> resolved is not allowed
    assert reply.status == 409
    assert "cannot be set to resolved" in await reply.text()
    reply = await case_form(staff_client, case_id, "notes", body="x" * 4001)
    page = await reply.text()
    assert reply.status == 400
    assert "limited to 4000 characters" in page and "x" * 4001 in page
    async with staff_db() as session:
        assert Status((await session.get(Escalation, case_id)).status) == Status.new


async def test_bad_attempts_are_explained(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-1")
    reply = await case_form(staff_client, case_id, "outcome", outcome="no_answer", attempts="lots")
    assert reply.status == 400
    assert "Contact attempts must be a whole number from 0 to 50" in await reply.text()


async def test_an_unknown_case_form_is_404(staff_client):
    reply = await case_form(staff_client, "00000000-0000-0000-0000-000000000000", "notes", body="hi")
    assert reply.status == 404


# --- assets ---------------------------------------------------------------------------------------


async def test_dashboard_assets_are_served_to_anyone(anon_client):
    for name, kind in (("staff.css", "text/css"), ("live.js", "javascript"), ("queue.js", "javascript"),
                       ("escalation.js", "javascript")):
        reply = await anon_client.get(f"/staff/static/{name}")
        assert reply.status == 200, name
        assert kind in reply.headers["Content-Type"]


async def test_only_listed_assets_are_served(anon_client):
    assert (await anon_client.get("/staff/static/missing.js")).status == 404
    for path in ("/staff/static/..%2Fpages.py", "/staff/static/%2E%2E/pages.py", "/staff/static/../pages.py"):
        reply = await anon_client.get(path, allow_redirects=False)
        assert reply.status in (303, 404), path
        assert "def setup" not in await reply.text()


async def test_pages_load_no_inline_script_or_style(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-1")
    for path in ("/staff/", f"/staff/escalations/{case_id}", "/staff/login"):
        page = await (await staff_client.get(path)).text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert "<style" not in page and " style=" not in page, path
        assert re.search(r" on[a-z]+=", page) is None, path


async def test_admins_see_the_accounts_link_and_staff_do_not(staff_client, admin_client):
    assert "Accounts</a>" not in await (await staff_client.get("/staff/")).text()
    assert "Accounts</a>" in await (await admin_client.get("/staff/")).text()


async def test_sign_in_page_uses_the_dashboard_layout(anon_client):
    page = await (await anon_client.get("/staff/login")).text()
    assert '<link rel="stylesheet" href="/staff/static/staff.css">' in page
    assert "Riverside Physiotherapy" in page
    assert "Sign out" not in page


async def test_two_colleagues_see_each_others_work(aiohttp_client, staff_server, staff_client, make_user, staff_db):
    await make_user("robin", display_name="Robin Physio")
    robin = await signed_in_client(aiohttp_client, staff_server, "robin")
    case_id = await escalate(staff_db, "s-1")
    assert (await case_form(robin, case_id, "assign", assignee="me")).status == 303
    page = await (await staff_client.get("/staff/")).text()
    assert "Robin Physio" in page


# --- colours -----------------------------------------------------------------------------------

STAFF_CSS = Path(__file__).resolve().parents[2] / "bot" / "dashboard" / "web" / "static" / "staff" / "staff.css"
#: (text colour, background) pairs the stylesheet uses for words: WCAG 2.1 AA wants 4.5:1.
TEXT_PAIRS = [
    ("ink", "page"), ("ink", "surface"), ("muted", "surface"), ("muted", "page"), ("accent", "surface"),
    ("accent", "page"), ("accent-ink", "accent"), ("top-ink", "top"), ("top-muted", "top"),
    ("urgent-ink", "urgent"), ("urgent-text", "urgent-soft"), ("high", "high-soft"), ("new", "new-soft"),
    ("progress", "progress-soft"), ("done", "done-soft"), ("overdue", "surface"), ("top", "accent-soft"),
    ("ink", "patient"), ("ink", "staff"), ("ink", "urgent-soft"), ("muted", "urgent-soft"), ("muted", "high-soft"),
    ("muted", "patient"), ("accent", "accent-soft"),
]
#: Borders, focus rings and the urgent row mark against what surrounds them: 3:1.
NON_TEXT_PAIRS = [("line-strong", "surface"), ("line-strong", "page"), ("focus", "surface"), ("focus", "page"),
                  ("urgent", "surface"), ("urgent", "page")]


def contrast(first: str, second: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[index:index + 2], 16) / 255 for index in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_dashboard_colours_meet_wcag_aa_contrast():
    root = re.search(r":root \{(.*?)\}", STAFF_CSS.read_text(encoding="utf-8"), re.S).group(1)
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", root))
    low = [(fg, bg, round(contrast(colours[fg], colours[bg]), 2)) for fg, bg in TEXT_PAIRS
           if contrast(colours[fg], colours[bg]) < 4.5]
    low += [(fg, bg, round(contrast(colours[fg], colours[bg]), 2)) for fg, bg in NON_TEXT_PAIRS
            if contrast(colours[fg], colours[bg]) < 3.0]
    assert low == []


def test_the_contrast_check_notices_a_pale_colour():
    assert contrast("#777777", "#ffffff") < 4.5 <= contrast("#767676", "#ffffff") + 0.1
