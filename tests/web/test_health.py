"""/healthz: database reachability, and whether staff can be told of urgent escalations, without patient data."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.core.escalation.spool import Spool
from bot.core.settings import Settings
from bot.core.store import repository as repo
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import Escalation, OutboxMessage, OutboxStatus, Priority, Reason, utcnow
from bot.core.store.repository import EscalationInput
from bot.dashboard.web.app import create_app
from bot.dashboard.web.health import QUERY_SECONDS
from tests.support.silent_server import SilentServer

PATIENT_TEXT = "I fainted in the car park after my session"
PATIENT_NAME = "Ana Quetzal"
PATIENT_PHONE = "+447911123456"
SENDER = "conv-health-1"


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=db_url,
        notify_webhook_url="http://127.0.0.1:9/hook",
        notify_interval_seconds=3600,  # the notifier's first pass runs at start, then sleeps
        urgent_notify_alert_seconds=300,
    )


async def health(aiohttp_client, settings: Settings) -> tuple[int, dict]:
    client = await aiohttp_client(create_app(settings))
    reply = await client.get("/healthz")
    return reply.status, await reply.json()


async def store_urgent(settings: Settings, *, age: timedelta, transports: list[str]) -> str:
    """An urgent escalation created ``age`` ago, with an undelivered notification per transport."""
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        data = EscalationInput(
            sender_id=SENDER, channel="rest", reason=Reason.emergency, priority=Priority.urgent,
            trigger={"matched_terms": ["fainting"], "message": PATIENT_TEXT},
            transcript=[{"from": "patient", "text": PATIENT_TEXT}],
            contact_name=PATIENT_NAME, contact_method="phone", contact_detail=PATIENT_PHONE, consent_given=True,
        )
        async with sessions() as session:
            async with session.begin():
                record, _, _ = await repo.upsert_escalation(session, data)
                for transport in transports:
                    await repo.enqueue_notification(session, record.id, transport, {}, Priority.urgent)
                await session.flush()
                then = utcnow() - age
                await session.execute(update(Escalation).values(created_at=then, updated_at=then))
                # Far in the future: the notifier running beside the app must not deliver it meanwhile.
                await session.execute(
                    update(OutboxMessage).values(created_at=then, next_attempt_at=utcnow() + timedelta(days=1))
                )
        return record.id
    finally:
        await engine.dispose()


async def test_a_healthy_store_with_a_transport_is_ok(aiohttp_client, settings):
    status, body = await health(aiohttp_client, settings)

    assert status == 200
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["problems"] == [] and body["warnings"] == []
    assert body["notifications"] == {
        "transports": ["webhook"], "urgent_undelivered": 0, "oldest_urgent_undelivered_seconds": None,
        "dead_letters": 0,
    }
    assert body["spool"] == {"backlog": 0, "unreadable": 0, "replay_failures": 0, "last_replay_error_at": None}


async def test_an_urgent_notification_undelivered_past_the_threshold_degrades(aiohttp_client, settings):
    await store_urgent(settings, age=timedelta(minutes=6), transports=["webhook"])

    status, body = await health(aiohttp_client, settings)

    assert status == 503
    assert body["status"] == "degraded"
    assert "urgent_notification_overdue" in body["problems"]
    assert body["notifications"]["urgent_undelivered"] == 1
    assert 355 <= body["notifications"]["oldest_urgent_undelivered_seconds"] <= 400


async def test_an_urgent_notification_within_the_threshold_is_still_ok(aiohttp_client, settings):
    await store_urgent(settings, age=timedelta(minutes=2), transports=["webhook"])

    status, body = await health(aiohttp_client, settings)

    assert status == 200
    assert body["notifications"]["urgent_undelivered"] == 1


async def test_with_no_transport_an_old_urgent_escalation_degrades(aiohttp_client, settings):
    no_transport = dataclasses.replace(settings, notify_webhook_url="")
    await store_urgent(no_transport, age=timedelta(minutes=6), transports=[])

    status, body = await health(aiohttp_client, no_transport)

    assert status == 503
    assert body["problems"] == ["urgent_escalation_untold"]
    assert body["warnings"] == ["no_staff_notification_transport"]
    assert body["notifications"]["transports"] == []
    assert body["escalations"]["urgent_untold"] == 1


async def test_with_no_transport_and_nothing_urgent_it_is_ok_with_a_warning(aiohttp_client, settings):
    status, body = await health(aiohttp_client, dataclasses.replace(settings, notify_webhook_url=""))

    assert status == 200
    assert body["warnings"] == ["no_staff_notification_transport"]


async def test_dead_letters_and_the_spool_are_reported(aiohttp_client, settings):
    escalation_id = await store_urgent(settings, age=timedelta(minutes=1), transports=["webhook"])
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            async with session.begin():
                await session.execute(update(OutboxMessage).values(status=OutboxStatus.dead))
    finally:
        await engine.dispose()
    spool = Spool(settings.spool_dir)
    spool.directory.mkdir(parents=True)
    spool.unreadable_path.write_text("torn line\n", encoding="utf-8")

    status, body = await health(aiohttp_client, settings)

    assert body["notifications"]["dead_letters"] == 1
    assert body["spool"]["unreadable"] == 1
    assert escalation_id not in json.dumps(body)


async def test_an_unreachable_database_degrades(aiohttp_client, tmp_path, settings):
    broken = dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'not-a-db'}")
    (tmp_path / "not-a-db").write_bytes(b"this is not a database file" * 100)

    status, body = await health(aiohttp_client, broken)

    assert status == 503
    assert body["database"] == "unavailable"
    assert body["problems"] == ["database_unavailable"]


async def test_the_report_carries_no_patient_data(aiohttp_client, settings):
    await store_urgent(settings, age=timedelta(minutes=6), transports=["webhook"])

    client = await aiohttp_client(create_app(settings))
    text = await (await client.get("/healthz")).text()

    for secret in (PATIENT_TEXT, "fainted", PATIENT_NAME, "Quetzal", PATIENT_PHONE, "7911123456", SENDER):
        assert secret not in text


async def test_the_web_app_warns_at_start_when_no_transport_is_configured(aiohttp_client, settings, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.dashboard.web.app"):
        await aiohttp_client(create_app(dataclasses.replace(settings, notify_webhook_url="")))

    assert "no staff notification transport is configured" in caplog.text


async def test_the_web_app_does_not_warn_when_a_transport_is_configured(aiohttp_client, settings, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.dashboard.web.app"):
        await aiohttp_client(create_app(settings))

    assert "no staff notification transport" not in caplog.text


async def test_a_hanging_database_gets_a_degraded_answer_in_time(aiohttp_client, settings):
    server = SilentServer().start()
    try:
        client = await aiohttp_client(create_app(dataclasses.replace(settings, database_url=server.postgres_url)))
        started = time.monotonic()

        reply = await client.get("/healthz")

        assert time.monotonic() - started < QUERY_SECONDS + 1
        assert reply.status == 503
        assert (await reply.json())["problems"] == ["database_unavailable"]
    finally:
        server.stop()


async def test_a_spool_that_does_not_drain_degrades_and_unreadable_lines_are_a_warning(settings, tmp_path):
    from bot.dashboard.web.health import HealthSources, health_report

    engine = create_engine(settings.database_url)
    try:
        spool = Spool(tmp_path / "spool")
        sources = HealthSources(session_factory(engine), spool, ("webhook",), timedelta(seconds=300))
        assert (await health_report(sources))["status"] == "ok"

        spool.append(
            EscalationInput(
                sender_id=SENDER, channel="rest", reason=Reason.emergency, priority=Priority.urgent,
                trigger={}, transcript=[],
            )
        )
        spool.replay_failures, spool.last_replay_error_at = 1, utcnow()
        (tmp_path / "spool" / "escalations.unreadable").write_text("{not json\n", encoding="utf-8")
        report = await health_report(sources)

        assert report["status"] == "degraded" and "spool_not_draining" in report["problems"]
        assert "spool_unreadable_lines" in report["warnings"]
        assert report["spool"]["backlog"] == 1 and report["spool"]["unreadable"] == 1

        # A failure long ago, before the store came back, is history rather than a present problem.
        spool.last_replay_error_at = utcnow() - timedelta(hours=1)
        assert "spool_not_draining" not in (await health_report(sources))["problems"]
    finally:
        await engine.dispose()


# Who sees the figures (issue 20): a local monitor or signed-in staff; anyone else the status only.


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
async def test_a_request_through_a_proxy_gets_the_status_only(aiohttp_client, settings, header):
    await store_urgent(settings, age=timedelta(minutes=10), transports=["webhook"])
    client = await aiohttp_client(create_app(settings))

    reply = await client.get("/healthz", headers={header: "203.0.113.9"})

    assert reply.status == 503
    assert await reply.json() == {"status": "degraded"}


async def test_a_local_monitor_gets_the_figures(aiohttp_client, settings):
    status, body = await health(aiohttp_client, settings)

    assert status == 200 and body["status"] == "ok" and "escalations" in body and "spool" in body


async def test_staff_with_an_api_token_get_the_figures_through_a_proxy(aiohttp_client, settings):
    from bot.dashboard.staff import accounts, tokens

    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            user = await accounts.create_user(session, "rita", "a perfectly long password", actor="test")
            token, _ = await tokens.issue(session, user, "monitor", actor="test")
    finally:
        await engine.dispose()
    client = await aiohttp_client(create_app(settings))
    proxied = {"X-Forwarded-For": "203.0.113.9"}

    with_token = await client.get("/healthz", headers={**proxied, "Authorization": f"Bearer {token}"})
    bad_token = await client.get("/healthz", headers={**proxied, "Authorization": "Bearer dnst_wrong"})
    staff_route = await client.get("/staff/api/health", headers={"Authorization": f"Bearer {token}"})
    anonymous = await client.get("/staff/api/health")

    assert "escalations" in await with_token.json() and "escalations" in await staff_route.json()
    assert await bad_token.json() == {"status": "ok"}
    assert anonymous.status == 401
