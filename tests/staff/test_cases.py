"""Case work on a real store: the queue's filters, search, order, counts and paging; the audited actions.

The same tests run on PostgreSQL in tests/store_pg/test_cases_postgres.py (only the
``sessions`` fixture differs).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core.store.models import AuditEvent, AuditKind, Escalation, Outcome, Priority, Reason, Status
from bot.dashboard.staff import cases
from bot.dashboard.staff.cases import CaseFilter, InvalidInput
from tests.support.cases import CLINIC, T0, Actor, add_case, add_user


async def queue(sessions, filters: CaseFilter = CaseFilter(), **kwargs) -> cases.CasePage:
    async with sessions() as session:
        return await cases.list_cases(session, filters, **kwargs)


async def audit_of(sessions, case_id: str) -> list[AuditEvent]:
    async with sessions() as session:
        rows = await session.execute(select(AuditEvent).where(AuditEvent.escalation_id == case_id).order_by(AuditEvent.id))
        return list(rows.scalars())


# --- order, paging, counts -------------------------------------------------------------


async def test_open_urgent_cases_come_first_then_most_urgent_then_newest_and_resolved_last(sessions):
    old_urgent = await add_case(sessions, minutes=0, reason=Reason.emergency, priority=Priority.urgent)
    new_normal = await add_case(sessions, minutes=50)
    high = await add_case(sessions, minutes=10, reason=Reason.adverse_event, priority=Priority.high)
    older_normal = await add_case(sessions, minutes=5)
    resolved_urgent = await add_case(sessions, minutes=60, reason=Reason.emergency, priority=Priority.urgent,
                                     status=Status.resolved)
    new_urgent = await add_case(sessions, minutes=20, reason=Reason.emergency, priority=Priority.urgent,
                                status=Status.in_progress)

    page = await queue(sessions)

    assert [item.id for item in page.items] == [new_urgent, old_urgent, high, new_normal, older_normal, resolved_urgent]
    assert page.items[0].red_flag and not page.items[2].red_flag


async def test_pages_split_the_queue_and_count_every_match(sessions):
    ids = [await add_case(sessions, minutes=minute) for minute in range(7)]

    first = await queue(sessions, per_page=3)
    last = await queue(sessions, page=3, per_page=3)

    assert first.total == 7 and first.pages == 3
    assert [item.id for item in first.items] == ids[::-1][:3]
    assert [item.id for item in last.items] == [ids[0]]
    assert (await queue(sessions, page=4, per_page=3)).items == []


async def test_counts_per_status_ignore_the_status_filter_but_honour_the_others(sessions):
    await add_case(sessions, status=Status.new)
    await add_case(sessions, status=Status.new, reason=Reason.emergency, priority=Priority.urgent)
    await add_case(sessions, status=Status.in_progress)
    await add_case(sessions, status=Status.resolved)

    page = await queue(sessions, CaseFilter(statuses=(Status.new,)))
    urgent = await queue(sessions, CaseFilter(priorities=(Priority.urgent,)))

    assert page.total == 2
    assert page.counts == {"new": 2, "in_progress": 1, "resolved": 1}
    assert urgent.counts == {"new": 1, "in_progress": 0, "resolved": 0}


# --- filters ---------------------------------------------------------------------------


async def test_each_filter_narrows_the_queue(sessions):
    ann = await add_user(sessions, "ann")
    bob = await add_user(sessions, "bob")
    emergency = await add_case(sessions, minutes=0, reason=Reason.emergency, priority=Priority.urgent, channel="socketio")
    mine = await add_case(sessions, minutes=60 * 24, assignee=ann)
    theirs = await add_case(sessions, minutes=60 * 48, assignee=bob, status=Status.in_progress)

    async def ids(filters: CaseFilter, viewer: Actor = ann) -> set[str]:
        return {item.id for item in (await queue(sessions, filters, viewer_id=viewer.id)).items}

    assert await ids(CaseFilter(reasons=(Reason.emergency,))) == {emergency}
    assert await ids(CaseFilter(priorities=(Priority.normal,))) == {mine, theirs}
    assert await ids(CaseFilter(channels=("socketio",))) == {emergency}
    assert await ids(CaseFilter(statuses=(Status.in_progress,))) == {theirs}
    assert await ids(CaseFilter(mine=True)) == {mine}
    assert await ids(CaseFilter(mine=True), viewer=bob) == {theirs}
    assert await ids(CaseFilter(assignee_id=bob.id)) == {theirs}
    assert await ids(CaseFilter(unassigned=True)) == {emergency}
    assert await ids(CaseFilter(created_from=T0 + timedelta(hours=1))) == {mine, theirs}
    assert await ids(CaseFilter(created_to=T0 + timedelta(hours=25))) == {emergency, mine}
    assert await ids(CaseFilter(created_from=T0 + timedelta(hours=1), created_to=T0 + timedelta(hours=25))) == {mine}


async def test_mine_without_a_viewer_is_refused(sessions):
    with pytest.raises(InvalidInput):
        await queue(sessions, CaseFilter(mine=True))


def test_filters_parse_from_a_query_string():
    filters = CaseFilter.from_params(
        {"status": ["new,in_progress"], "reason": "emergency", "priority": ["urgent", "high"], "channel": "rest",
         "from": "2026-03-02", "to": "2026-03-02", "assignee": "7"},
        tz=ZoneInfo("Europe/London"),
    )

    assert filters.statuses == (Status.new, Status.in_progress)
    assert filters.reasons == (Reason.emergency,) and filters.priorities == (Priority.urgent, Priority.high)
    assert filters.channels == ("rest",) and filters.assignee_id == 7
    # The clinic's whole local day (GMT in March): [00:00, next 00:00).
    assert filters.created_from == datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)
    assert filters.created_to == datetime(2026, 3, 3, 0, 0, tzinfo=timezone.utc)


def test_a_local_day_in_summer_starts_at_the_clinics_midnight():
    filters = CaseFilter.from_params({"from": "2026-07-01"}, tz=ZoneInfo("Europe/London"))

    assert filters.created_from == datetime(2026, 6, 30, 23, 0, tzinfo=timezone.utc)


def test_me_and_none_select_the_viewer_and_unassigned_cases():
    assert CaseFilter.from_params({"assignee": "me"}).mine
    assert CaseFilter.from_params({"assignee": "none"}).unassigned
    assert CaseFilter.from_params({"mine": "1"}).mine


@pytest.mark.parametrize("params, message", [
    ({"status": "closed"}, "'status' must be one of new, in_progress, resolved"),
    ({"reason": "pain"}, "'reason' must be one of"),
    ({"priority": "low"}, "'priority' must be one of"),
    ({"channel": "<script>"}, "'channel' must be a channel name"),
    ({"from": "yesterday"}, "'from' must be a date"),
    ({"from": "2026-03-05", "to": "2026-03-01"}, "'from' must be before 'to'"),
    ({"assignee": "someone"}, "'assignee' must be an account id"),
    ({"mine": "perhaps"}, "'mine' must be 1 or 0"),
    ({"from": ["2026-03-01", "2026-03-02"]}, "'from' may be given once"),
    ({"q": "pregnant"}, "send search text in the body"),
    ({"search": "pregnant"}, "send search text in the body"),
    ({"status": 3}, "'status' must be text"),
])
def test_bad_filters_are_refused_with_a_clear_message(params, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        CaseFilter.from_params(params)


@pytest.mark.parametrize("params", [{"page": "0"}, {"per_page": "101"}, {"page": "x"}, {"per_page": "-1"}])
def test_bad_paging_is_refused(params):
    with pytest.raises(InvalidInput):
        cases.page_params(params)


# --- search ----------------------------------------------------------------------------


async def test_search_finds_contact_names_and_details_case_insensitively(sessions):
    elodie = await add_case(sessions, contact_name="Élodie Durand", contact_detail="07700 900123")
    await add_case(sessions, contact_name="Bob")

    assert [item.id for item in (await queue(sessions, CaseFilter(search="élodie"))).items] == [elodie]
    assert [item.id for item in (await queue(sessions, CaseFilter(search="ÉLODIE DURAND"))).items] == [elodie]
    assert [item.id for item in (await queue(sessions, CaseFilter(search="900123"))).items] == [elodie]


async def test_search_finds_the_patients_words_but_not_the_assistants_or_json_keys(sessions):
    pregnant = await add_case(sessions, patient="I'm 20 weeks PREGNANT, is that ok?")
    await add_case(sessions, patient="does it hurt", assistant="Needling during pregnancy needs a clinician's advice.")

    assert [item.id for item in (await queue(sessions, CaseFilter(search="pregnant"))).items] == [pregnant]
    assert (await queue(sessions, CaseFilter(search="pregnancy"))).total == 0
    for key in ("patient", "from", "text", "assistant"):
        assert (await queue(sessions, CaseFilter(search=key))).total == 0, key


async def test_search_matches_non_ascii_patient_words(sessions):
    found = await add_case(sessions, patient="J'ai une douleur à l'épaule")

    assert [item.id for item in (await queue(sessions, CaseFilter(search="ÉPAULE"))).items] == [found]


@pytest.mark.parametrize("term", ["%", "_", "50%", "a_b", "'; DROP TABLE escalations; --", '"', "\\"])
async def test_search_wildcards_and_quotes_are_literal_text(sessions, term):
    literal = await add_case(sessions, patient=f"odd text {term} here")
    await add_case(sessions, patient="nothing special")

    page = await queue(sessions, CaseFilter(search=term))

    assert [item.id for item in page.items] == [literal]
    async with sessions() as session:
        assert len((await session.execute(select(Escalation.id))).all()) == 2


async def test_search_combines_with_filters_and_counts_only_matches(sessions):
    await add_case(sessions, contact_name="Ann Smith", status=Status.new)
    resolved = await add_case(sessions, contact_name="Ann Jones", status=Status.resolved)
    await add_case(sessions, contact_name="Bob", status=Status.resolved)

    page = await queue(sessions, CaseFilter(statuses=(Status.resolved,), search="ann"))

    assert [item.id for item in page.items] == [resolved] and page.total == 1
    assert page.counts == {"new": 1, "in_progress": 0, "resolved": 1}


async def test_search_results_page_in_queue_order(sessions):
    ids = [await add_case(sessions, minutes=minute, contact_name=f"Smith {minute}") for minute in range(5)]

    second = await queue(sessions, CaseFilter(search="smith"), page=2, per_page=2)

    assert second.total == 5 and [item.id for item in second.items] == [ids[2], ids[1]]


def test_search_text_is_checked():
    assert cases.check_search("  two   words ") == "two words"
    with pytest.raises(InvalidInput):
        cases.check_search("x" * 201)
    with pytest.raises(InvalidInput):
        cases.check_search(["list"])


# --- one case --------------------------------------------------------------------------


async def test_get_case_returns_contact_details_trigger_notes_and_audit(sessions):
    ann = await add_user(sessions, "ann", "Ann Physio")
    consent = T0 + timedelta(minutes=1)
    case_id = await add_case(sessions, contact_name="Ana", contact_detail="07700 900123", consent_at=consent)
    await cases.add_note(sessions, case_id, ann, "Left a voicemail.")

    async with sessions() as session:
        detail = await cases.get_case(session, case_id, clinic=CLINIC, now=T0 + timedelta(hours=3))

    assert detail.contact_detail == "07700 900123" and detail.consent_at == consent
    assert detail.trigger["matched_terms"] == ["pregnancy:pregnant"]
    assert [note.body for note in detail.notes] == ["Left a voicemail."] and detail.notes[0].author == "ann"
    assert [entry.kind for entry in detail.audit] == ["note_added"]
    assert detail.summary.wait.overdue  # promised at 09:01 on a Monday: due by 11:01
    assert detail.allowed_statuses() == [Status.in_progress]
    data = detail.to_dict()
    assert data["contact"]["detail"] == "07700 900123" and data["allowed_statuses"] == ["in_progress"]
    json.dumps(data)  # JSON-ready


@pytest.mark.parametrize("case_id", [str(uuid.uuid4()), "not-a-uuid", "", "../../etc/passwd"])
async def test_an_unknown_or_malformed_id_is_not_found(sessions, case_id):
    async with sessions() as session:
        with pytest.raises(cases.CaseNotFound):
            await cases.get_case(session, case_id)
    with pytest.raises(cases.CaseNotFound):
        await cases.set_status(sessions, case_id, Actor(1, "ann"), "in_progress")


# --- actions ---------------------------------------------------------------------------


async def test_assign_to_self_to_a_colleague_and_to_nobody_each_audited(sessions):
    ann = await add_user(sessions, "ann", "Ann Physio")
    bob = await add_user(sessions, "bob", "Bob Reception")
    case_id = await add_case(sessions)

    mine = await cases.assign(sessions, case_id, ann, ann.id)
    theirs = await cases.assign(sessions, case_id, ann, bob.id)
    nobody = await cases.assign(sessions, case_id, bob, None)

    assert (mine.assignee_id, mine.assignee, mine.assignee_name) == (ann.id, "ann", "Ann Physio")
    assert (theirs.assignee_id, theirs.assignee) == (bob.id, "bob")
    assert nobody.assignee_id is None and nobody.assignee is None
    events = await audit_of(sessions, case_id)
    assert [(event.kind, event.actor) for event in events] == [
        (AuditKind.case_assigned, "ann"), (AuditKind.case_assigned, "ann"), (AuditKind.case_assigned, "bob"),
    ]
    assert events[1].detail == {"before": {"assignee_id": ann.id, "assignee": "ann"},
                                "after": {"assignee_id": bob.id, "assignee": "bob"}}


async def test_assigning_the_current_holder_again_changes_and_audits_nothing(sessions):
    ann = await add_user(sessions, "ann")
    case_id = await add_case(sessions, assignee=ann)

    await cases.assign(sessions, case_id, ann, ann.id)

    assert await audit_of(sessions, case_id) == []


@pytest.mark.parametrize("target", ["disabled", 999_999, "7", True])
async def test_assign_refuses_disabled_unknown_or_malformed_accounts(sessions, target):
    ann = await add_user(sessions, "ann")
    gone = await add_user(sessions, "gone", disabled=True)
    case_id = await add_case(sessions)

    with pytest.raises(InvalidInput):
        await cases.assign(sessions, case_id, ann, gone.id if target == "disabled" else target)
    assert await audit_of(sessions, case_id) == []


async def test_status_follows_the_flow_and_records_when_it_was_resolved(sessions):
    ann = await add_user(sessions, "ann")
    case_id = await add_case(sessions)

    taken = await cases.set_status(sessions, case_id, ann, "in_progress")
    resolved = await cases.set_status(sessions, case_id, ann, Status.resolved)
    reopened = await cases.set_status(sessions, case_id, ann, "in_progress")
    released = await cases.set_status(sessions, case_id, ann, "new")

    assert taken.status == Status.in_progress and taken.resolved_at is None
    assert resolved.status == Status.resolved and resolved.resolved_at is not None
    assert reopened.status == Status.in_progress and reopened.resolved_at is None
    assert released.status == Status.new
    events = await audit_of(sessions, case_id)
    assert [event.detail for event in events] == [
        {"before": "new", "after": "in_progress"}, {"before": "in_progress", "after": "resolved"},
        {"before": "resolved", "after": "in_progress"}, {"before": "in_progress", "after": "new"},
    ]
    assert {event.kind for event in events} == {AuditKind.status_changed}
    assert {event.actor for event in events} == {"ann"}


@pytest.mark.parametrize("start, target", [
    (Status.new, "resolved"), (Status.new, "new"), (Status.in_progress, "in_progress"),
    (Status.resolved, "resolved"), (Status.resolved, "new"),
])
async def test_invalid_transitions_are_refused_and_not_audited(sessions, start, target):
    case_id = await add_case(sessions, status=start)

    with pytest.raises(cases.InvalidTransition):
        await cases.set_status(sessions, case_id, Actor(1, "ann"), target)

    async with sessions() as session:
        assert (await session.get(Escalation, case_id)).status == start
    assert await audit_of(sessions, case_id) == []


async def test_an_unknown_status_is_bad_input(sessions):
    case_id = await add_case(sessions)
    with pytest.raises(InvalidInput, match="'status' must be one of"):
        await cases.set_status(sessions, case_id, Actor(1, "ann"), "closed")


async def test_reopening_is_refused_while_the_conversation_has_a_newer_open_episode(sessions):
    ann = await add_user(sessions, "ann")
    old = await add_case(sessions, sender="conv-1", status=Status.resolved)
    newer = await add_case(sessions, sender="conv-1", minutes=30)

    with pytest.raises(cases.InvalidTransition, match=newer):
        await cases.set_status(sessions, old, ann, "in_progress")


async def test_two_staff_taking_the_same_case_at_once_one_wins(sessions):
    ann = await add_user(sessions, "ann")
    bob = await add_user(sessions, "bob")
    case_id = await add_case(sessions)

    results = await asyncio.gather(
        cases.set_status(sessions, case_id, ann, "in_progress"),
        cases.set_status(sessions, case_id, bob, "in_progress"),
        return_exceptions=True,
    )

    assert sum(isinstance(result, cases.CaseSummary) for result in results) == 1
    assert sum(isinstance(result, (cases.InvalidTransition, cases.CaseChanged)) for result in results) == 1
    assert len(await audit_of(sessions, case_id)) == 1


async def test_notes_are_private_and_their_text_stays_out_of_the_audit_log(sessions):
    ann = await add_user(sessions, "ann")
    case_id = await add_case(sessions)

    note = await cases.add_note(sessions, case_id, ann, "  Patient says she is 20 weeks pregnant.\n")

    assert note.body == "Patient says she is 20 weeks pregnant." and note.author == "ann"
    [event] = await audit_of(sessions, case_id)
    assert event.kind == AuditKind.note_added and event.actor == "ann"
    assert event.detail == {"note_id": note.id, "characters": len(note.body)}
    assert "pregnant" not in json.dumps(event.detail)


@pytest.mark.parametrize("body", ["", "   \n", "x" * 4001, None, 42])
async def test_empty_long_or_non_text_notes_are_refused(sessions, body):
    case_id = await add_case(sessions)
    with pytest.raises(InvalidInput):
        await cases.add_note(sessions, case_id, Actor(1, "ann"), body)
    assert await audit_of(sessions, case_id) == []


async def test_no_answer_counts_attempts_and_other_outcomes_keep_them(sessions):
    ann = await add_user(sessions, "ann")
    case_id = await add_case(sessions)

    first = await cases.record_outcome(sessions, case_id, ann, "no_answer")
    second = await cases.record_outcome(sessions, case_id, ann, Outcome.no_answer)
    booked = await cases.record_outcome(sessions, case_id, ann, "booked")
    corrected = await cases.record_outcome(sessions, case_id, ann, "called_back", attempts=4)

    assert [first.attempts, second.attempts, booked.attempts, corrected.attempts] == [1, 2, 2, 4]
    assert booked.outcome == Outcome.booked and booked.outcome_at is not None
    events = await audit_of(sessions, case_id)
    assert [event.detail["after"] for event in events] == [
        {"outcome": "no_answer", "attempts": 1}, {"outcome": "no_answer", "attempts": 2},
        {"outcome": "booked", "attempts": 2}, {"outcome": "called_back", "attempts": 4},
    ]
    assert events[2].detail["before"] == {"outcome": "no_answer", "attempts": 2}
    assert {event.kind for event in events} == {AuditKind.outcome_recorded}


@pytest.mark.parametrize("outcome, attempts", [("cured", None), (None, None), ("booked", -1), ("booked", 51),
                                               ("booked", "3"), ("booked", True)])
async def test_bad_outcomes_and_attempts_are_refused(sessions, outcome, attempts):
    case_id = await add_case(sessions)
    with pytest.raises(InvalidInput):
        await cases.record_outcome(sessions, case_id, Actor(1, "ann"), outcome, attempts)


async def test_every_outcome_of_the_issue_can_be_recorded(sessions):
    ann = await add_user(sessions, "ann")
    case_id = await add_case(sessions)
    for outcome in ("called_back", "booked", "advised_against_dry_needling", "referred_gp", "referred_emergency",
                    "no_answer"):
        assert (await cases.record_outcome(sessions, case_id, ann, outcome)).outcome.value == outcome


async def test_an_action_on_a_stale_read_is_refused_as_changed(sessions):
    case_id = await add_case(sessions)
    async with sessions() as session, session.begin():
        record = await session.get(Escalation, case_id)
        with pytest.raises(cases.CaseChanged):
            await cases._change(session, record, {"status": Status.in_progress}, {"status": Status.resolved})


async def test_colleagues_lists_accounts_that_are_not_disabled(sessions):
    await add_user(sessions, "zed", "Zed")
    await add_user(sessions, "amy", "Amy")
    await add_user(sessions, "gone", disabled=True)

    async with sessions() as session:
        found = await cases.colleagues(session)

    assert [colleague.username for colleague in found] == ["amy", "zed"]


async def test_queue_rows_carry_the_wait_against_the_promise(sessions):
    promised = await add_case(sessions, consent_at=T0, contact_name="Ana", contact_detail="07700 900123")
    silent = await add_case(sessions, minutes=1)

    page = await queue(sessions, clinic=CLINIC, now=T0 + timedelta(hours=2, minutes=1))
    rows = {item.id: item for item in page.items}

    assert rows[promised].wait.overdue and rows[promised].wait.promised
    assert not rows[silent].wait.promised and not rows[silent].wait.overdue
    data = rows[promised].to_dict()
    assert data["wait"]["overdue"] is True and data["contact"]["name"] == "Ana"
    assert "detail" not in data["contact"]  # the queue row leaves contact details to the case view

