"""The SMS channel's store on a real PostgreSQL server: races between replicas, claims, counters."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.core.messaging import store
from bot.core.messaging.addresses import parse_address
from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import upgrade
from bot.core.store.models import SmsOutbound, utcnow
from tests.support.postgres import server  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.postgres

NUMBER = "+447700900777"


@pytest.fixture
async def engines(server):
    """Two engines, as two replicas would have."""
    server.reset()
    upgrade(server.url)
    first, second = create_engine(server.url), create_engine(server.url)
    yield session_factory(first), session_factory(second)
    await first.dispose()
    await second.dispose()


async def in_transaction(sessions, work):
    async with sessions() as session:
        async with session.begin():
            return await work(session)


async def test_two_replicas_taking_in_a_new_number_at_once_make_one_conversation(engines):
    address = parse_address(NUMBER)
    results = await asyncio.gather(*[
        in_transaction(engines[i % 2], lambda s: store.contact_for(s, address, utcnow())) for i in range(8)
    ])
    assert len({contact.sender_id for contact in results}) == 1


async def test_a_message_sid_is_taken_in_once_across_replicas(engines):
    contact = await in_transaction(engines[0], lambda s: store.contact_for(s, parse_address(NUMBER), utcnow()))
    sid = "SM" + "a" * 32
    taken = await asyncio.gather(*[
        in_transaction(engines[i % 2], lambda s: store.take_in(s, sid, contact.id, utcnow())) for i in range(6)
    ])
    assert taken.count(True) == 1


async def test_counters_add_up_under_concurrent_bumps(engines):
    now = utcnow()
    await asyncio.gather(*[
        in_transaction(engines[i % 2], lambda s: store.bump(s, store.INBOUND_PER_MINUTE, "sms-x", "w", now))
        for i in range(10)
    ])
    assert await in_transaction(engines[0], lambda s: store.count(s, store.INBOUND_PER_MINUTE, "sms-x", "w")) == 10


async def test_claims_keep_each_conversation_in_order_and_skip_rows_claimed_elsewhere(engines):
    first, second = engines
    now = utcnow()

    async def arrange(session):
        a = await store.contact_for(session, parse_address(NUMBER), now)
        b = await store.contact_for(session, parse_address("+447700900778"), now)
        await store.queue(session, a, ["a1", "a2"], now)
        await store.queue(session, b, ["b1"], now)

    await in_transaction(first, arrange)
    async with first() as holding:
        async with holding.begin():
            claimed = await store.claim_outbound(holding, utcnow(), timedelta(seconds=60))
            assert claimed.body == "a1"
            # While the first replica's transaction holds a1, the other skips it, and may not take a2 before a1.
            other = await in_transaction(second, lambda s: store.claim_outbound(s, utcnow(), timedelta(seconds=60)))
            assert other.body == "b1"
    nothing = await in_transaction(second, lambda s: store.claim_outbound(s, utcnow(), timedelta(seconds=60)))
    assert nothing is None  # a1 is leased, so a2 waits

    async def expire(session):
        await session.execute(update(SmsOutbound).where(SmsOutbound.body == "a1")
                              .values(status="sent", claim_token=None))

    await in_transaction(first, expire)
    after = await in_transaction(second, lambda s: store.claim_outbound(s, utcnow(), timedelta(seconds=60)))
    assert after.body == "a2"
