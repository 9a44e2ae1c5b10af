"""The staff JSON API through the real app (auth middleware, CSRF, a migrated SQLite store, a tracker table)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from bot.core.store.models import StaffUser, Status
from bot.dashboard.staff import tokens
from tests.support import tracker
from tests.support.cases import T0, add_case, add_user

API = "/staff/api"


def csrf(client) -> dict[str, str]:
    return {"X-CSRF-Token": client.csrf}


async def post(client, path: str, body, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers = {**csrf(client), "Content-Type": "application/json", **kwargs.pop("headers", {})}
    return await client.post(path, data=data, headers=headers, **kwargs)


@pytest.fixture
def tracker_url(staff_settings) -> str:
    staff_settings.var_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{staff_settings.var_dir / 'tracker.db'}"
    tracker.create_events_table(url)
    return url


async def user_id(staff_db, username: str) -> int:
    async with staff_db() as session:
        from sqlalchemy import select

        return (await session.execute(select(StaffUser.id).where(StaffUser.username == username))).scalar_one()


# --- queue -----------------------------------------------------------------------------


async def test_the_queue_lists_cases_in_order_with_counts(staff_client, staff_db):
    normal = await add_case(staff_db, minutes=30)
    urgent = await add_case(staff_db, minutes=0, reason="emergency", priority="urgent")
    await add_case(staff_db, minutes=40, status=Status.resolved)

    reply = await staff_client.get(f"{API}/escalations")

    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    page = await reply.json()
    assert [item["id"] for item in page["items"]][:2] == [urgent, normal]
    assert page["items"][0]["red_flag"] is True and page["items"][0]["reason"] == "emergency"
    assert page["counts"] == {"new": 2, "in_progress": 0, "resolved": 1} and page["total"] == 3
    assert "wait" in page["items"][0] and "last_patient_message_at" in page["items"][0]


async def test_queue_filters_come_from_the_query_string(staff_client, staff_db):
    await add_case(staff_db)
    urgent = await add_case(staff_db, reason="emergency", priority="urgent", channel="socketio")

    reply = await staff_client.get(f"{API}/escalations", params={"priority": "urgent", "channel": "socketio"})

    assert [item["id"] for item in (await reply.json())["items"]] == [urgent]


async def test_mine_shows_the_signed_in_members_cases(staff_client, staff_db):
    sam = await user_id(staff_db, "sam")
    other = await add_user(staff_db, "other")
    await add_case(staff_db, assignee=other)
    case_id = await add_case(staff_db)
    await post(staff_client, f"{API}/escalations/{case_id}/assign", {"assignee": "me"})

    for params in ({"mine": "1"}, {"assignee": "me"}, {"assignee": str(sam)}):
        page = await (await staff_client.get(f"{API}/escalations", params=params)).json()
        assert [item["id"] for item in page["items"]] == [case_id], params


@pytest.mark.parametrize("query, message", [
    ("status=closed", "'status' must be one of"),
    ("from=tomorrow", "'from' must be a date"),
    ("page=0", "'page' must be a whole number"),
    ("per_page=1000", "'per_page' must be a whole number"),
    ("search=pregnant", "send search text in the body"),
    ("q=pregnant", "send search text in the body"),
])
async def test_bad_queue_parameters_get_400_with_a_message(staff_client, query, message):
    reply = await staff_client.get(f"{API}/escalations?{query}")

    assert reply.status == 400
    body = await reply.json()
    assert body["error"] == "bad_request" and message in body["message"]


async def test_counts_alone(staff_client, staff_db):
    await add_case(staff_db)
    await add_case(staff_db, status=Status.in_progress)

    reply = await staff_client.get(f"{API}/escalations/counts")

    assert (await reply.json()) == {"counts": {"new": 1, "in_progress": 1, "resolved": 0}}


async def test_the_queue_carries_each_patients_latest_message_time(staff_client, staff_db, tracker_url):
    case_id = await add_case(staff_db, sender="conv-live")
    tracker.append(tracker_url, "conv-live", [tracker.user("hello?", T0.timestamp() + 600)])

    page = await (await staff_client.get(f"{API}/escalations")).json()

    [item] = [item for item in page["items"] if item["id"] == case_id]
    assert item["last_patient_message_at"] == (T0 + timedelta(minutes=10)).isoformat()


# --- search ----------------------------------------------------------------------------


async def test_search_is_posted_and_finds_patient_words_with_filters(staff_client, staff_db):
    found = await add_case(staff_db, patient="I'm PREGNANT, is needling ok?")
    await add_case(staff_db, patient="I'm pregnant too", status=Status.resolved)
    await add_case(staff_db, patient="does it hurt?")

    reply = await post(staff_client, f"{API}/escalations/search",
                       {"search": "pregnant", "filters": {"status": ["new"]}, "page": 1, "per_page": 10})

    assert reply.status == 200
    page = await reply.json()
    assert [item["id"] for item in page["items"]] == [found]
    assert page["counts"] == {"new": 1, "in_progress": 0, "resolved": 1}
    assert "pregnant" not in str(reply.url)


@pytest.mark.parametrize("body, message", [
    ("not json", "not valid JSON"),
    ('["a list"]', "must be a JSON object"),
    ({}, "'search' is empty"),
    ({"search": "   "}, "'search' is empty"),
    ({"search": 42}, "'search' must be a string"),
    ({"search": "x" * 201}, "limited to 200"),
    ({"search": "ann", "filters": "status=new"}, "'filters' must be an object"),
    ({"search": "ann", "filters": {"status": "closed"}}, "'status' must be one of"),
    ({"search": "ann", "per_page": 0}, "'per_page'"),
])
async def test_bad_searches_get_400(staff_client, body, message):
    reply = await post(staff_client, f"{API}/escalations/search", body)

    assert reply.status == 400
    assert message in (await reply.json())["message"]


async def test_search_is_not_offered_by_get(staff_client):
    reply = await staff_client.get(f"{API}/escalations/search")

    assert reply.status == 405


async def test_a_search_without_the_csrf_token_is_refused(staff_client):
    reply = await staff_client.post(f"{API}/escalations/search", json={"search": "ann"})

    assert reply.status == 403


# --- one case --------------------------------------------------------------------------


async def test_one_case_with_contact_details_trigger_and_audit(staff_client, staff_db):
    case_id = await add_case(staff_db, contact_name="Ana", contact_detail="07700 900123", consent_at=T0)

    reply = await staff_client.get(f"{API}/escalations/{case_id}")

    assert reply.status == 200
    case = await reply.json()
    assert case["contact"] == {"name": "Ana", "method": "phone", "consent": True, "detail": "07700 900123",
                               "consent_at": T0.isoformat()}
    assert case["trigger"]["matched_terms"] == ["pregnancy:pregnant"]
    assert case["allowed_statuses"] == ["in_progress"] and case["notes"] == [] and case["audit"] == []


@pytest.mark.parametrize("suffix", ["", "/conversation"])
async def test_an_unknown_escalation_is_a_404_json_answer(staff_client, suffix):
    reply = await staff_client.get(f"{API}/escalations/{uuid.uuid4()}{suffix}")

    assert reply.status == 404
    assert (await reply.json())["error"] == "not_found"


async def test_a_malformed_id_is_a_404_json_answer(staff_client):
    reply = await staff_client.get(f"{API}/escalations/not-an-id")

    assert reply.status == 404
    assert reply.content_type == "application/json"


# --- conversation ----------------------------------------------------------------------


async def test_the_conversation_comes_from_the_tracker_store_with_the_trigger_marked(
    staff_client, staff_db, tracker_url
):
    case_id = await add_case(staff_db, sender="conv-7", patient="I'm pregnant", minutes=1)
    start = T0.timestamp()
    tracker.append(tracker_url, "conv-7", [
        tracker.user("hi", start), tracker.bot("Hello!", start + 1),
        tracker.user("I'm pregnant", start + 59), tracker.bot("A physio will check.", start + 60),
        tracker.user("<script>alert(1)</script>", start + 300),
    ])

    reply = await staff_client.get(f"{API}/escalations/{case_id}/conversation")

    assert reply.status == 200
    body = await reply.json()
    assert body["escalation_id"] == case_id and body["available"] is True
    turns = body["turns"]
    assert [turn["text"] for turn in turns] == ["hi", "Hello!", "I'm pregnant", "A physio will check.",
                                                "<script>alert(1)</script>"]
    assert [turn["text"] for turn in turns if turn["trigger"]] == ["I'm pregnant"]
    assert [turn["after_escalation"] for turn in turns] == [False, False, False, False, True]

    tracker.append(tracker_url, "conv-7", [tracker.user("hello?", start + 400)])
    newer = await (await staff_client.get(
        f"{API}/escalations/{case_id}/conversation", params={"since": str(body["last_event_id"])}
    )).json()
    assert [turn["text"] for turn in newer["turns"]] == ["hello?"]


async def test_without_a_tracker_store_the_conversation_is_unavailable_not_an_error(staff_client, staff_db):
    case_id = await add_case(staff_db)

    body = await (await staff_client.get(f"{API}/escalations/{case_id}/conversation")).json()

    assert body["available"] is False and body["turns"] == []


@pytest.mark.parametrize("since", ["-1", "abc", "1.5", "9" * 20, str(2**31)])
async def test_a_bad_since_is_a_400(staff_client, staff_db, since):
    case_id = await add_case(staff_db)

    reply = await staff_client.get(f"{API}/escalations/{case_id}/conversation", params={"since": since})

    assert reply.status == 400


# --- actions ---------------------------------------------------------------------------


async def test_assign_note_status_and_outcome_each_appear_in_the_audit_trail(staff_client, staff_db):
    case_id = await add_case(staff_db)
    colleague = await add_user(staff_db, "bea", "Bea Reception")
    base = f"{API}/escalations/{case_id}"

    assigned = await post(staff_client, f"{base}/assign", {"assignee": "me"})
    handed = await post(staff_client, f"{base}/assign", {"assignee_id": colleague.id})
    taken = await post(staff_client, f"{base}/status", {"status": "in_progress"})
    noted = await post(staff_client, f"{base}/notes", {"body": "Tried twice, voicemail."})
    outcome = await post(staff_client, f"{base}/outcome", {"outcome": "no_answer", "attempts": 2})
    resolved = await post(staff_client, f"{base}/status", {"status": "resolved"})

    assert [reply.status for reply in (assigned, handed, taken, noted, outcome, resolved)] == [
        200, 200, 200, 201, 200, 200]
    assert (await assigned.json())["assignee"]["username"] == "sam"
    assert (await handed.json())["assignee"] == {"id": colleague.id, "username": "bea", "display_name": "Bea Reception"}
    assert (await outcome.json())["attempts"] == 2
    case = await (await staff_client.get(base)).json()
    assert case["status"] == "resolved" and case["resolved_at"]
    assert [note["body"] for note in case["notes"]] == ["Tried twice, voicemail."]
    assert [(entry["kind"], entry["actor"]) for entry in case["audit"]] == [
        ("case_assigned", "sam"), ("case_assigned", "sam"), ("status_changed", "sam"), ("note_added", "sam"),
        ("outcome_recorded", "sam"), ("status_changed", "sam"),
    ]
    assert "voicemail" not in json.dumps([entry["detail"] for entry in case["audit"]])


async def test_an_invalid_transition_is_a_409_with_a_message(staff_client, staff_db):
    case_id = await add_case(staff_db)

    reply = await post(staff_client, f"{API}/escalations/{case_id}/status", {"status": "resolved"})

    assert reply.status == 409
    assert (await reply.json())["message"] == "a new case cannot be set to resolved"


@pytest.mark.parametrize("action, body", [
    ("assign", {}),
    ("assign", {"assignee_id": "someone"}),
    ("assign", {"assignee_id": 987654}),
    ("assign", {"assignee_id": 10**30}),
    ("assign", {"assignee_id": 1.0}),
    ("status", {"status": "closed"}),
    ("status", {}),
    ("notes", {"body": ""}),
    ("notes", {"body": ["x"]}),
    ("outcome", {"outcome": "cured"}),
    ("outcome", {"outcome": "booked", "attempts": 99}),
    ("outcome", {"outcome": "booked", "attempts": "two"}),
])
async def test_bad_action_bodies_get_400_never_500(staff_client, staff_db, action, body):
    case_id = await add_case(staff_db)

    reply = await post(staff_client, f"{API}/escalations/{case_id}/{action}", body)

    assert reply.status == 400, await reply.text()
    assert (await reply.json())["message"]


@pytest.mark.parametrize("action", ["assign", "status", "notes", "outcome"])
@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"null", b"[1, 2]", b"{" * 1000, b'{"a": NaN}',
                                 b"[" * 30000 + b"]" * 30000])
async def test_junk_bodies_get_400(staff_client, staff_db, action, raw):
    case_id = await add_case(staff_db)

    reply = await post(staff_client, f"{API}/escalations/{case_id}/{action}", raw)

    assert reply.status == 400


async def test_a_body_that_is_not_json_is_refused(staff_client, staff_db):
    case_id = await add_case(staff_db)

    reply = await staff_client.post(f"{API}/escalations/{case_id}/status", data="status=resolved",
                                    headers={**csrf(staff_client), "Content-Type": "text/plain"})

    assert reply.status == 400


async def test_form_posts_work_too(staff_client, staff_db):
    case_id = await add_case(staff_db)

    reply = await staff_client.post(f"{API}/escalations/{case_id}/status",
                                    data={"csrf_token": staff_client.csrf, "status": "in_progress"})

    assert reply.status == 200 and (await reply.json())["status"] == "in_progress"


async def test_actions_on_an_unknown_case_are_404(staff_client):
    reply = await post(staff_client, f"{API}/escalations/{uuid.uuid4()}/notes", {"body": "hello"})

    assert reply.status == 404


async def test_actions_without_the_csrf_token_are_refused_and_change_nothing(staff_client, staff_db):
    case_id = await add_case(staff_db)

    reply = await staff_client.post(f"{API}/escalations/{case_id}/status", json={"status": "in_progress"})

    assert reply.status == 403
    case = await (await staff_client.get(f"{API}/escalations/{case_id}")).json()
    assert case["status"] == "new" and case["audit"] == []


async def test_an_api_token_works_without_csrf_and_acts_as_its_owner(aiohttp_client, staff_server, staff_db,
                                                                   make_user):
    owner = await make_user("tom", display_name="Tom Tokens")
    async with staff_db() as session, session.begin():
        token, _ = await tokens.issue(session, owner, "script", actor="test")
    case_id = await add_case(staff_db)
    client = await aiohttp_client(staff_server)
    bearer = {"Authorization": f"Bearer {token}"}

    reply = await client.post(f"{API}/escalations/{case_id}/notes", json={"body": "from a script"}, headers=bearer)

    assert reply.status == 201 and (await reply.json())["author"] == "tom"
    assert (await client.get(f"{API}/escalations", headers=bearer)).status == 200


async def test_anonymous_requests_get_401_json(anon_client, staff_db):
    case_id = await add_case(staff_db)
    for method, path in [("GET", f"{API}/escalations"), ("POST", f"{API}/escalations/search"),
                         ("GET", f"{API}/escalations/{case_id}"), ("POST", f"{API}/escalations/{case_id}/status"),
                         ("GET", f"{API}/escalations/export.csv"), ("GET", f"{API}/openapi.json")]:
        reply = await anon_client.request(method, path, json={"status": "resolved"})
        assert reply.status == 401, path
        assert reply.content_type == "application/json"


async def test_colleagues_lists_enabled_accounts(staff_client, staff_db):
    await add_user(staff_db, "gone", disabled=True)
    await add_user(staff_db, "amy", "Amy")

    body = await (await staff_client.get(f"{API}/colleagues")).json()

    assert [item["username"] for item in body["items"]] == ["amy", "sam"]
