"""Urgent escalations per client address are capped; the excess is grouped into one "possible abuse" case.

On the SQLite store (one per test); the same flood on PostgreSQL is in test_flood_postgres.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core.escalation.flood import ATTACHED_LIMIT, METADATA_KEY, client_key, client_key_of, with_client_key
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.store.models import AuditEvent, AuditKind, Escalation, Priority, Reason, utcnow
from tests.escalation.flood_cases import (
    FLOODER, PATIENT_ADDRESS, RED_FLAG, SECRET, TRANSPORTS, check_flood, escalations, flood, red_flag,
    run_flood_with_a_real_patient,
)


@pytest.fixture
def capped(sessions, spool) -> EscalationService:
    return EscalationService(sessions, spool, TRANSPORTS, urgent_per_address_per_hour=5)


async def test_a_flood_of_100_invented_senders_makes_at_most_the_cap_plus_one_grouped_case(sessions, tmp_path):
    check_flood(await run_flood_with_a_real_patient(sessions, tmp_path))


async def test_reaching_the_cap_is_audited_once_and_logged_without_patient_data(capped, sessions, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.core.escalation.flood"):
        await flood(capped, 12, concurrency=1)

    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == AuditKind.urgent_cap_reached)
        [event] = list((await session.execute(query)).scalars())
    assert event.detail == {"cap_per_hour": 5, "created_last_hour": 5}
    [warning] = [r.getMessage() for r in caplog.records if "passed its cap" in r.getMessage()]
    assert RED_FLAG not in caplog.text and "bot-" not in caplog.text and "203.0.113" not in caplog.text
    assert event.escalation_id in warning


async def test_an_escalation_with_contact_details_is_never_grouped(capped, sessions):
    await flood(capped, 6, concurrency=1)

    outcome = await capped.escalate(red_flag("real-at-same-address", FLOODER, contact_detail="07700 900123",
                                             contact_method="phone", contact_name="A Patient"))

    [row] = [r for r in await escalations(sessions) if r.sender_id == "real-at-same-address"]
    assert outcome.created and not row.possible_abuse and row.contact_detail == "07700 900123"


async def test_text_messages_are_never_grouped(capped, sessions):
    await flood(capped, 6, concurrency=1)

    outcome = await capped.escalate(red_flag("sms-abc", FLOODER, channel="sms"))

    [row] = [r for r in await escalations(sessions) if r.sender_id == "sms-abc"]
    assert outcome.created and not row.possible_abuse


async def test_a_repeat_in_a_conversation_with_its_own_case_updates_that_case(capped, sessions):
    await flood(capped, 5, concurrency=1)  # bot-0 .. bot-4 have their own cases: the cap is reached

    outcome = await capped.escalate(red_flag("bot-2", FLOODER))

    [row] = [r for r in await escalations(sessions) if r.sender_id == "bot-2"]
    assert outcome.escalation_id == row.id and row.occurrences == 2
    assert not any(r.possible_abuse for r in await escalations(sessions))


async def test_urgent_cases_older_than_an_hour_no_longer_count(capped, sessions):
    await flood(capped, 5, concurrency=1)
    async with sessions() as session:
        async with session.begin():
            await session.execute(update(Escalation).values(created_at=utcnow() - timedelta(minutes=61)))

    outcome = await capped.escalate(red_flag("bot-later", FLOODER))

    [row] = [r for r in await escalations(sessions) if r.sender_id == "bot-later"]
    assert outcome.created and not row.possible_abuse


async def test_messages_without_a_client_key_are_not_capped(capped, sessions):
    for n in range(8):
        await capped.escalate(red_flag(f"unknown-{n}", None))
    assert [r.possible_abuse for r in await escalations(sessions)] == [False] * 8


async def test_the_cap_is_a_setting(sessions, spool):
    service = EscalationService(sessions, spool, TRANSPORTS, urgent_per_address_per_hour=2)
    await flood(service, 4, concurrency=1)
    assert sorted(r.possible_abuse for r in await escalations(sessions)) == [False, False, True]


async def test_past_the_attached_limit_messages_are_counted_not_attached(capped, sessions, monkeypatch):
    monkeypatch.setattr("bot.core.escalation.flood.ATTACHED_LIMIT", 3)
    await flood(capped, 10, concurrency=1)

    [group] = [r for r in await escalations(sessions) if r.possible_abuse]
    assert group.occurrences == 5
    assert {turn["conversation"] for turn in group.transcript} == {"bot-5", "bot-6", "bot-7"}
    assert ATTACHED_LIMIT >= 100  # the default keeps every message of a 100-message flood


async def test_a_spooled_flood_is_capped_when_it_is_replayed(sessions, tmp_path):
    spool = Spool(tmp_path / "spool")
    for n in range(8):
        spool.append(red_flag(f"bot-{n}", FLOODER))
    service = EscalationService(sessions, spool, TRANSPORTS, urgent_per_address_per_hour=5)

    assert await spool.replay(service.store_spooled) == 8

    rows = await escalations(sessions)
    assert len(rows) == 6 and sum(r.possible_abuse for r in rows) == 1


def test_the_client_key_is_a_keyed_hash_and_an_ipv6_address_counts_as_its_64():
    assert client_key("203.0.113.9", SECRET) == FLOODER != PATIENT_ADDRESS
    assert "203.0.113.9" not in FLOODER and len(FLOODER) == 32
    assert client_key("203.0.113.9", "another-secret") != FLOODER
    assert client_key("2001:db8:1:2::1", SECRET) == client_key("2001:db8:1:2:ffff::9", SECRET)
    assert client_key("2001:db8:1:2::1", SECRET) != client_key("2001:db8:1:3::1", SECRET)
    assert client_key("::ffff:203.0.113.9", SECRET) == FLOODER
    assert client_key(None, SECRET) is None and client_key("", SECRET) is None


def test_a_client_cannot_choose_its_own_key():
    metadata = with_client_key({METADATA_KEY: PATIENT_ADDRESS, "page": "/"}, "203.0.113.9", SECRET)
    assert metadata == {METADATA_KEY: FLOODER, "page": "/"}
    assert with_client_key({METADATA_KEY: PATIENT_ADDRESS}, None, SECRET) == {}


def test_the_key_is_read_from_the_latest_messages_metadata():
    assert client_key_of({"latest_message": {"metadata": {METADATA_KEY: FLOODER}}}) == FLOODER
    assert client_key_of({"latest_message": {"metadata": {METADATA_KEY: "not a key"}}}) is None
    assert client_key_of({"latest_message": {"metadata": None}}) is None
    assert client_key_of({}) is None


async def test_the_grouped_case_keeps_urgent_priority_and_the_emergency_reason(capped, sessions):
    await flood(capped, 7, concurrency=1)
    [group] = [r for r in await escalations(sessions) if r.possible_abuse]
    assert (group.priority, group.reason, group.client_key) == (Priority.urgent, Reason.emergency, FLOODER)
    assert group.trigger["possible_abuse"] is True and group.trigger["cap_per_hour"] == 5
    assert group.sender_id.startswith("flood-") and FLOODER[:24] in group.sender_id
