"""Outbox claims (urgent first, leases, one holder), delivery figures and the unusual-volume audit, on SQLite."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core.store import repository as repo
from bot.core.store.models import PRIORITY_RANK, AuditEvent, AuditKind, Escalation, OutboxMessage, OutboxStatus, Priority, Reason, Status, utcnow

LEASE = timedelta(minutes=1)


def outbox_row(escalation_id: str, priority: Priority = Priority.normal, **values) -> OutboxMessage:
    return OutboxMessage(
        escalation_id=escalation_id, transport="webhook", payload={}, priority_rank=PRIORITY_RANK[priority], **values
    )


async def add(sessions, *objects) -> None:
    async with sessions() as session:
        async with session.begin():
            session.add_all(objects)


async def claim(sessions, limit: int = 10, now=None) -> list[OutboxMessage]:
    async with sessions() as session:
        async with session.begin():
            return await repo.claim_notifications(session, now or utcnow(), LEASE, limit)


async def test_claims_come_urgent_first_then_oldest(sessions):
    now = utcnow()
    await add(
        sessions,
        outbox_row("old-normal", created_at=now - timedelta(minutes=9)),
        outbox_row("high", Priority.high, created_at=now - timedelta(minutes=5)),
        outbox_row("new-urgent", Priority.urgent, created_at=now - timedelta(minutes=1)),
        outbox_row("old-urgent", Priority.urgent, created_at=now - timedelta(minutes=3)),
    )

    claimed = await claim(sessions)

    assert [m.escalation_id for m in claimed] == ["old-urgent", "new-urgent", "high", "old-normal"]


async def test_a_claim_counts_an_attempt_and_leases_the_row(sessions):
    await add(sessions, outbox_row("e1"))
    now = utcnow()

    [message] = await claim(sessions, now=now)

    assert message.attempts == 1
    assert message.claim_token
    assert message.next_attempt_at == now + LEASE


async def test_a_claimed_row_is_not_claimed_again_during_its_lease(sessions):
    await add(sessions, outbox_row("e1"))
    await claim(sessions)

    assert await claim(sessions) == []


async def test_a_row_comes_back_when_its_lease_ends(sessions):
    await add(sessions, outbox_row("e1"))
    [first] = await claim(sessions)

    [again] = await claim(sessions, now=utcnow() + LEASE + timedelta(seconds=1))

    assert again.id == first.id
    assert again.claim_token != first.claim_token
    assert again.attempts == 2


async def test_only_the_current_claim_holder_can_record_a_result(sessions):
    await add(sessions, outbox_row("e1"))
    [first] = await claim(sessions)
    [second] = await claim(sessions, now=utcnow() + LEASE + timedelta(seconds=1))

    async with sessions() as session:
        assert await repo.claimed_notification(session, first.id, first.claim_token) is None
        assert (await repo.claimed_notification(session, second.id, second.claim_token)).id == first.id


async def test_claim_respects_its_limit(sessions):
    await add(sessions, *(outbox_row(f"e{n}") for n in range(5)))

    assert len(await claim(sessions, limit=2)) == 2
    assert len(await claim(sessions, limit=10)) == 3


def escalation(priority: Priority = Priority.urgent, age: timedelta = timedelta(0), **values) -> Escalation:
    created = utcnow() - age
    return Escalation(
        sender_id=values.pop("sender_id", "conv-1"), channel="rest", reason=values.pop("reason", Reason.emergency),
        priority=priority, trigger={}, transcript=[], created_at=created, updated_at=created, **values,
    )


async def figures(sessions, alert_after: timedelta = timedelta(minutes=5)) -> repo.DeliveryFigures:
    async with sessions() as session:
        return await repo.delivery_figures(session, utcnow(), alert_after)


async def test_delivery_figures_of_an_empty_store_are_zero(sessions):
    assert await figures(sessions) == repo.DeliveryFigures(0, None, 0, 0, None)


async def test_delivery_figures_count_undelivered_urgent_messages_and_their_oldest(sessions):
    now = utcnow()
    await add(
        sessions,
        outbox_row("u1", Priority.urgent, created_at=now - timedelta(minutes=7)),
        outbox_row("u2", Priority.urgent, created_at=now - timedelta(minutes=2)),
        outbox_row("n1", Priority.normal, created_at=now - timedelta(hours=2)),
        outbox_row("u3", Priority.urgent, created_at=now - timedelta(hours=1), status=OutboxStatus.sent),
        outbox_row("d1", Priority.high, status=OutboxStatus.dead),
    )

    result = await figures(sessions)

    assert result.urgent_undelivered == 2
    assert abs(result.oldest_urgent_undelivered - (now - timedelta(minutes=7))) < timedelta(seconds=1)
    assert result.oldest_urgent_undelivered.utcoffset() == timedelta(0)
    assert result.dead == 1


async def test_an_urgent_escalation_nobody_was_told_of_counts_once_past_the_threshold(sessions):
    await add(
        sessions,
        escalation(age=timedelta(minutes=10), sender_id="untold"),
        escalation(age=timedelta(minutes=1), sender_id="recent"),
        escalation(Priority.high, age=timedelta(minutes=10), sender_id="not-urgent", reason=Reason.adverse_event),
        escalation(age=timedelta(minutes=10), sender_id="in-hand", status=Status.in_progress),
    )

    result = await figures(sessions)

    assert result.urgent_untold == 1
    assert result.oldest_urgent_untold is not None


async def test_an_urgent_escalation_whose_notification_was_sent_is_not_untold(sessions):
    record = escalation(age=timedelta(minutes=10))
    await add(sessions, record)
    await add(sessions, outbox_row(record.id, Priority.urgent, status=OutboxStatus.sent))

    assert (await figures(sessions)).urgent_untold == 0


async def unusual_volume_events(sessions) -> list[AuditEvent]:
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == AuditKind.unusual_volume)
        return list((await session.execute(query)).scalars())


async def check_volume(sessions, threshold: int, now=None):
    async with sessions() as session:
        async with session.begin():
            return await repo.record_unusual_volume(session, now or utcnow(), threshold)


async def test_volume_at_the_threshold_is_not_unusual(sessions):
    await add(sessions, *(escalation(sender_id=f"c{n}") for n in range(3)))

    assert await check_volume(sessions, threshold=3) is None
    assert await unusual_volume_events(sessions) == []


async def test_volume_over_the_threshold_is_audited_without_patient_data(sessions):
    await add(sessions, *(escalation(sender_id=f"c{n}") for n in range(4)))

    assert await check_volume(sessions, threshold=3) == 4

    [event] = await unusual_volume_events(sessions)
    assert event.detail == {"created_last_hour": 4, "warning_threshold": 3}
    assert event.sender_id is None and event.escalation_id is None


async def test_unusual_volume_is_audited_at_most_once_an_hour(sessions):
    await add(sessions, *(escalation(sender_id=f"c{n}") for n in range(4)))
    await check_volume(sessions, threshold=3)
    await add(sessions, escalation(sender_id="c9"))

    assert await check_volume(sessions, threshold=3) is None
    assert len(await unusual_volume_events(sessions)) == 1


async def test_escalations_older_than_an_hour_do_not_count_towards_the_volume(sessions):
    await add(sessions, *(escalation(sender_id=f"c{n}", age=timedelta(hours=2)) for n in range(5)))

    assert await check_volume(sessions, threshold=3) is None
