"""Repository functions of the escalation store, against a migrated SQLite file."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from bot.core.store import repository as repo
from bot.core.store.models import AuditEvent, AuditKind, Escalation, OutboxMessage, OutboxStatus, Priority, Reason, Status, utcnow
from bot.core.store.repository import EscalationInput


def escalation_input(
    sender_id: str = "conv-1",
    reason: Reason = Reason.adverse_event,
    priority: Priority = Priority.high,
    trigger: dict | None = None,
    transcript: list | None = None,
    **extra,
) -> EscalationInput:
    return EscalationInput(
        sender_id=sender_id,
        channel="rest",
        reason=reason,
        priority=priority,
        trigger=trigger if trigger is not None else {"matched_terms": ["bruise"], "intent": "report_adverse_event"},
        transcript=transcript if transcript is not None else [{"role": "user", "text": "I have a big bruise"}],
        **extra,
    )


async def upsert(sessions, data: EscalationInput) -> tuple[Escalation, bool]:
    async with sessions() as session:
        async with session.begin():
            record, created, _ = await repo.upsert_escalation(session, data)
            return record, created


async def load_all(sessions) -> list[Escalation]:
    async with sessions() as session:
        return list((await session.execute(select(Escalation).order_by(Escalation.created_at))).scalars())


async def test_upsert_creates_a_record_the_first_time(sessions):
    record, created = await upsert(sessions, escalation_input())

    assert created is True
    [stored] = await load_all(sessions)
    assert stored.id == record.id
    assert stored.status == Status.new
    assert stored.priority == Priority.high


async def test_upsert_for_the_same_sender_and_reason_updates_the_one_record(sessions):
    first, _ = await upsert(sessions, escalation_input())

    second, created = await upsert(sessions, escalation_input(trigger={"matched_terms": ["swelling"]}))

    assert created is False
    assert second.id == first.id
    records = await load_all(sessions)
    assert len(records) == 1
    assert records[0].trigger["matched_terms"] == ["swelling"]


async def test_upsert_keeps_earlier_triggers_in_history(sessions):
    await upsert(sessions, escalation_input(trigger={"matched_terms": ["bruise"]}))
    await upsert(sessions, escalation_input(trigger={"matched_terms": ["swelling"]}))
    await upsert(sessions, escalation_input(trigger={"matched_terms": ["fever"]}))

    [record] = await load_all(sessions)
    assert record.trigger["matched_terms"] == ["fever"]
    assert record.trigger["history"] == [{"matched_terms": ["bruise"]}, {"matched_terms": ["swelling"]}]


async def test_upsert_never_lowers_the_priority(sessions):
    await upsert(sessions, escalation_input(priority=Priority.high))

    record, _ = await upsert(sessions, escalation_input(priority=Priority.normal))

    assert record.priority == Priority.high
    [stored] = await load_all(sessions)
    assert stored.priority == Priority.high


async def test_upsert_raises_the_priority(sessions):
    await upsert(sessions, escalation_input(priority=Priority.normal))

    await upsert(sessions, escalation_input(priority=Priority.urgent))

    [stored] = await load_all(sessions)
    assert stored.priority == Priority.urgent


async def resolve(sessions, escalation_id: str) -> None:
    async with sessions() as session:
        async with session.begin():
            await session.execute(
                update(Escalation).where(Escalation.id == escalation_id).values(status=Status.resolved)
            )


async def test_a_later_episode_after_resolution_is_a_new_escalation(sessions):
    first, _ = await upsert(sessions, escalation_input())
    await resolve(sessions, first.id)

    second, created = await upsert(sessions, escalation_input())

    assert created is True and second.id != first.id
    records = {r.id: r for r in await load_all(sessions)}
    assert records[first.id].status == Status.resolved
    assert records[second.id].status == Status.new


async def test_a_new_episode_leaves_the_resolved_transcript_as_it_was(sessions):
    earlier = [{"from": "patient", "text": "a bruise", "time": 1.0}]
    first, _ = await upsert(sessions, escalation_input(transcript=earlier))
    await resolve(sessions, first.id)

    await upsert(sessions, escalation_input(transcript=earlier + [{"from": "patient", "text": "fever", "time": 9.0}]))

    records = {r.id: r for r in await load_all(sessions)}
    assert records[first.id].transcript == earlier


async def test_only_one_episode_per_conversation_and_reason_can_be_open(sessions):
    await upsert(sessions, escalation_input())

    with pytest.raises(SQLAlchemyError):
        async with sessions() as session:
            async with session.begin():
                session.add(Escalation(sender_id="conv-1", channel="rest", reason=Reason.adverse_event,
                                       priority=Priority.high, trigger={}, transcript=[]))


async def test_an_update_merges_new_turns_into_the_stored_transcript(sessions):
    turn = lambda n: {"from": "patient", "text": f"turn {n}", "time": float(n)}  # noqa: E731
    await upsert(sessions, escalation_input(transcript=[turn(1), turn(2)]))

    # The conversation's latest turns: the snapshot window no longer holds turn 1.
    await upsert(sessions, escalation_input(transcript=[turn(2), turn(3)]))

    [stored] = await load_all(sessions)
    assert stored.transcript == [turn(1), turn(2), turn(3)]


async def test_repeated_triggers_are_counted(sessions):
    for _ in range(3):
        await upsert(sessions, escalation_input())

    [stored] = await load_all(sessions)
    assert stored.occurrences == 3


async def test_the_trigger_history_is_capped_while_occurrences_count_everything(sessions):
    for n in range(repo.TRIGGER_HISTORY_LIMIT + 5):
        await upsert(sessions, escalation_input(trigger={"n": n}))

    [stored] = await load_all(sessions)
    assert len(stored.trigger["history"]) == repo.TRIGGER_HISTORY_LIMIT
    assert stored.trigger["history"][-1] == {"n": repo.TRIGGER_HISTORY_LIMIT + 3}
    assert stored.occurrences == repo.TRIGGER_HISTORY_LIMIT + 5


async def test_upsert_reports_a_raised_priority(sessions):
    async with sessions() as session:
        async with session.begin():
            created = await repo.upsert_escalation(session, escalation_input(priority=Priority.normal))
            raised = await repo.upsert_escalation(session, escalation_input(priority=Priority.urgent))
            same = await repo.upsert_escalation(session, escalation_input(priority=Priority.urgent))

    assert (created.created, raised.priority_raised, same.priority_raised) == (True, True, False)


def test_merge_transcript_appends_only_what_follows_the_overlap():
    assert repo.merge_transcript([{"t": 1}, {"t": 2}], [{"t": 2}, {"t": 3}]) == [{"t": 1}, {"t": 2}, {"t": 3}]


def test_merge_transcript_ignores_a_snapshot_it_already_holds():
    stored = [{"t": 1}, {"t": 2}, {"t": 3}]

    assert repo.merge_transcript(stored, [{"t": 1}, {"t": 2}]) == stored
    assert repo.merge_transcript(stored, []) == stored


def test_merge_transcript_keeps_both_when_nothing_overlaps():
    assert repo.merge_transcript([{"t": 1}], [{"t": 5}]) == [{"t": 1}, {"t": 5}]


async def test_upsert_keeps_contact_details_when_the_update_has_none(sessions):
    await upsert(
        sessions,
        escalation_input(
            contact_name="Ana", contact_method="phone", contact_detail="+442079460958", consent_given=True
        ),
    )

    await upsert(sessions, escalation_input())

    [stored] = await load_all(sessions)
    assert (stored.contact_name, stored.contact_method, stored.contact_detail) == ("Ana", "phone", "+442079460958")
    assert stored.consent_given is True


async def test_upsert_with_a_different_reason_creates_a_second_record(sessions):
    first, _ = await upsert(sessions, escalation_input(reason=Reason.adverse_event))

    second, created = await upsert(sessions, escalation_input(reason=Reason.human_request, priority=Priority.normal))

    assert created is True
    assert second.id != first.id
    assert {r.reason for r in await load_all(sessions)} == {Reason.adverse_event, Reason.human_request}


async def test_timestamps_come_back_timezone_aware_utc(sessions):
    await upsert(sessions, escalation_input(consent_given=True))

    [stored] = await load_all(sessions)
    for value in (stored.created_at, stored.updated_at, stored.consent_at):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
    assert abs(utcnow() - stored.created_at) < timedelta(minutes=1)


async def test_a_naive_datetime_is_refused(sessions):
    record, _ = await upsert(sessions, escalation_input())

    with pytest.raises(SQLAlchemyError, match="naive datetime"):
        async with sessions() as session:
            async with session.begin():
                naive = utcnow().replace(tzinfo=None)
                await session.execute(update(Escalation).where(Escalation.id == record.id).values(consent_at=naive))


async def add_event(sessions) -> int:
    async with sessions() as session:
        async with session.begin():
            event = await repo.add_audit(session, AuditKind.red_flag_triggered, sender_id="conv-1", detail={"x": 1})
            await session.flush()
            return event.id


async def test_audit_log_rejects_update(sessions):
    event_id = await add_event(sessions)

    with pytest.raises(SQLAlchemyError, match="append-only"):
        async with sessions() as session:
            async with session.begin():
                await session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(actor="mallory"))

    async with sessions() as session:
        assert (await session.get(AuditEvent, event_id)).actor == "assistant"


async def test_audit_log_rejects_delete(sessions):
    event_id = await add_event(sessions)

    with pytest.raises(SQLAlchemyError, match="append-only"):
        async with sessions() as session:
            async with session.begin():
                await session.execute(delete(AuditEvent).where(AuditEvent.id == event_id))

    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one() == 1


def outbox_row(escalation_id: str, **values) -> OutboxMessage:
    return OutboxMessage(escalation_id=escalation_id, transport="email", payload={}, **values)


async def test_due_notifications_returns_only_pending_rows_that_are_due(sessions):
    now = utcnow()
    async with sessions() as session:
        async with session.begin():
            session.add_all([
                outbox_row("e1", next_attempt_at=now - timedelta(seconds=5)),
                outbox_row("e2", next_attempt_at=now + timedelta(minutes=5)),
                outbox_row("e3", next_attempt_at=now - timedelta(minutes=5), status=OutboxStatus.sent),
                outbox_row("e4", next_attempt_at=now - timedelta(minutes=5), status=OutboxStatus.dead),
            ])

    async with sessions() as session:
        async with session.begin():
            due = await repo.due_notifications(session, now)

    assert [m.escalation_id for m in due] == ["e1"]


async def test_due_notifications_compares_instants_not_local_clock_times(sessions):
    now = utcnow()
    plus_two = timezone(timedelta(hours=2))
    async with sessions() as session:
        async with session.begin():
            session.add(outbox_row("e1", next_attempt_at=(now + timedelta(hours=1)).astimezone(plus_two)))

    async with sessions() as session:
        async with session.begin():
            assert await repo.due_notifications(session, now) == []
            assert len(await repo.due_notifications(session, now + timedelta(hours=2))) == 1


def test_backoff_doubles_with_each_attempt():
    assert [repo.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_backoff_is_capped():
    assert repo.backoff(50) == timedelta(hours=1)
    assert repo.backoff(8, base_seconds=30, cap_seconds=600) == timedelta(minutes=10)


def test_backoff_before_the_first_attempt_is_the_base_delay():
    assert repo.backoff(0) == timedelta(seconds=30)
