"""The notifier claims, commits, sends outside any transaction, records the result; urgent first."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from bot.core.store import repository as repo
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import OutboxMessage, OutboxStatus, Priority, Reason, utcnow
from bot.dashboard.notify.worker import LEASE, Claimed
from tests.notify.test_worker import escalation_input, make_due, outbox


async def test_urgent_notifications_are_sent_before_older_normal_ones(service, notifier, webhook):
    normal = await service.escalate(escalation_input(Reason.human_request, Priority.normal))
    urgent = await service.escalate(escalation_input(Reason.emergency, Priority.urgent))

    await notifier.run_once()

    assert [p["escalation_id"] for p in webhook.received] == [urgent.escalation_id, normal.escalation_id]


async def test_no_transaction_is_open_while_a_message_is_sent(service, notifier, settings, monkeypatch):
    await service.escalate(escalation_input())
    entered, release = asyncio.Event(), asyncio.Event()

    async def blocked_webhook(payload: dict) -> None:
        entered.set()
        await release.wait()

    monkeypatch.setattr(notifier, "_send_webhook", blocked_webhook)
    monkeypatch.setattr(notifier, "_send_email", blocked_webhook)
    sending = asyncio.create_task(notifier.run_once())
    await asyncio.wait_for(entered.wait(), 10)
    probe = create_engine(settings.database_url)
    try:
        # Another writer gets the database at once: the sender holds no transaction or lock.
        async with session_factory(probe)() as session:
            async with session.begin():
                await asyncio.wait_for(session.execute(update(OutboxMessage).values(last_error="probe")), 3)
    finally:
        await probe.dispose()
        release.set()

    assert await asyncio.wait_for(sending, 10) == 2


async def test_a_message_claimed_by_a_sender_that_died_is_sent_after_its_lease(service, notifier, sessions, webhook):
    await service.escalate(escalation_input())
    async with sessions() as session:
        async with session.begin():
            await repo.claim_notifications(session, utcnow(), LEASE, limit=10)  # ... and the sender dies
    assert await notifier.run_once() == 0

    await make_due(sessions)  # the lease ends
    sent = await notifier.run_once()

    assert sent == 2
    [message] = await outbox(sessions, "webhook")
    assert message.status == OutboxStatus.sent and message.attempts == 2
    assert message.claim_token is None


async def test_a_result_is_not_recorded_by_a_sender_whose_lease_was_taken_over(service, notifier, sessions, caplog):
    await service.escalate(escalation_input())
    async with sessions() as session:
        async with session.begin():
            [stale, _] = await repo.claim_notifications(session, utcnow(), LEASE, limit=10)
    async with sessions() as session:
        async with session.begin():
            later = utcnow() + LEASE + timedelta(seconds=1)
            await repo.claim_notifications(session, later, LEASE, limit=10)

    claim = Claimed(stale.id, stale.claim_token, stale.escalation_id, stale.transport, stale.payload, stale.attempts)
    await notifier._record(claim, None)

    async with sessions() as session:
        row = (await session.execute(select(OutboxMessage).where(OutboxMessage.id == stale.id))).scalar_one()
    assert row.status == OutboxStatus.pending and row.claim_token != stale.claim_token
    assert "expired before its result was recorded" in caplog.text
