"""The urgent alert route (bot/core/escalation/alerting.py): "alerted" only when someone is there and delivery works.

The store is a real migrated SQLite file per test; the outbox rows are written the way the
notifier writes them (:mod:`bot.dashboard.notify.worker`), and one test drives the notifier itself
against a webhook receiver that fails, then recovers.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic
from bot.core.escalation.alerting import Route, UrgentAlertRoute
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.settings import Settings
from bot.core.store import repository as repo
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import OutboxStatus, Priority, Reason
from bot.core.store.repository import EscalationInput
from bot.dashboard.notify.worker import Notifier
from tests.escalation.conftest import clinic_open_now
from tests.support.receivers import WebhookReceiver

LONDON = ZoneInfo("Europe/London")
HOURS = {day: ["08:00", "19:00"] for day in ("mon", "tue", "wed", "thu")} | {"fri": ["08:00", "17:00"]}
CLINIC = Clinic(
    name="Riverside Physiotherapy",
    phone="020 7946 0958",
    booking_url="https://clinic.example/book",
    timezone="Europe/London",
    opening_hours=HOURS,
    bank_holidays="GB-ENG",
    closures=["2026-12-09"],
)
#: Monday 7 December 2026, 10:00 in London: open.
OPEN_NOW = datetime(2026, 12, 7, 10, 0, tzinfo=LONDON).astimezone(timezone.utc)
ALERT_AFTER = timedelta(seconds=300)


def route(
    sessions: sessionmaker,
    now: datetime = OPEN_NOW,
    transports: tuple[str, ...] = ("email",),
    clinic: Optional[Clinic] = CLINIC,
    timeout: float = 1.0,
) -> UrgentAlertRoute:
    return UrgentAlertRoute(sessions, transports, clinic, overdue_after=ALERT_AFTER, timeout=timeout, clock=lambda: now)


async def add(sessions: sessionmaker, transport: str = "email", priority: Priority = Priority.urgent, **row) -> None:
    """An outbox row as the notifier leaves it (``row`` overrides the columns)."""
    async with sessions() as session:
        async with session.begin():
            message = await repo.enqueue_notification(session, "esc-1", transport, {"urgent": True}, priority)
            for name, value in {"created_at": OPEN_NOW, "next_attempt_at": OPEN_NOW, **row}.items():
                setattr(message, name, value)


def failed(at: datetime, attempts: int = 1) -> dict:
    """The columns of a message whose latest attempt failed at ``at`` and waits for its retry."""
    return {
        "attempts": attempts, "last_error": "SMTPConnectError: refused", "created_at": at - timedelta(seconds=5),
        "next_attempt_at": at + repo.backoff(attempts),
    }


def sent(at: datetime) -> dict:
    return {"status": OutboxStatus.sent, "attempts": 1, "sent_at": at, "created_at": at - timedelta(seconds=2)}


async def test_open_clinic_with_a_transport_and_nothing_failed_is_alerting(sessions):
    check = await route(sessions).check()
    assert (check.route, check.problems) == (Route.alerting, ())


async def test_the_urgent_notification_just_queued_for_this_escalation_does_not_count_as_overdue(sessions):
    await add(sessions, created_at=OPEN_NOW - timedelta(seconds=2), next_attempt_at=OPEN_NOW - timedelta(seconds=2))
    assert (await route(sessions).check()).route == Route.alerting


async def test_no_transport_configured_is_not_working(sessions):
    check = await route(sessions, transports=()).check()
    assert (check.route, check.problems) == (Route.not_working, ("no_transport",))


async def test_a_service_without_clinic_hours_never_claims_an_alert(sessions):
    check = await route(sessions, clinic=None).check()
    assert (check.route, check.problems) == (Route.not_working, ("clinic_hours_unknown",))


async def test_a_clinic_with_no_opening_hours_is_not_working_rather_than_closed_until_never(sessions):
    check = await route(sessions, clinic=Clinic(name="X", phone="0", booking_url="https://x.example")).check()
    assert (check.route, check.problems, check.opens) == (Route.not_working, ("clinic_hours_unknown",), None)


async def test_an_urgent_notification_unsent_past_the_alert_time_means_not_working(sessions):
    late = OPEN_NOW - ALERT_AFTER - timedelta(seconds=1)
    await add(sessions, created_at=late, next_attempt_at=OPEN_NOW + timedelta(seconds=60), attempts=2)
    check = await route(sessions).check()
    assert (check.route, check.problems) == (Route.not_working, ("email_overdue",))


async def test_an_urgent_notification_just_under_the_alert_time_is_not_overdue(sessions):
    recent = OPEN_NOW - ALERT_AFTER + timedelta(seconds=5)
    await add(sessions, created_at=recent, next_attempt_at=recent)
    assert (await route(sessions).check()).route == Route.alerting


async def test_any_notification_due_past_the_alert_time_and_never_claimed_means_the_notifier_is_not_running(sessions):
    long_due = OPEN_NOW - ALERT_AFTER - timedelta(seconds=1)
    await add(sessions, priority=Priority.normal, created_at=long_due, next_attempt_at=long_due)
    check = await route(sessions).check()
    assert (check.route, check.problems) == (Route.not_working, ("email_overdue",))


async def test_a_latest_attempt_that_failed_with_nothing_delivered_since_means_failing(sessions):
    await add(sessions, priority=Priority.normal, **failed(OPEN_NOW - timedelta(seconds=40)))
    check = await route(sessions).check()
    assert (check.route, check.problems) == (Route.not_working, ("email_failing",))


async def test_a_failure_followed_by_a_delivery_is_working_again(sessions):
    await add(sessions, priority=Priority.normal, **failed(OPEN_NOW - timedelta(seconds=100), attempts=3))
    await add(sessions, priority=Priority.normal, **sent(OPEN_NOW - timedelta(seconds=20)))
    assert (await route(sessions).check()).route == Route.alerting


async def test_a_delivery_followed_by_a_failure_is_failing(sessions):
    await add(sessions, priority=Priority.normal, **sent(OPEN_NOW - timedelta(seconds=100)))
    await add(sessions, priority=Priority.normal, **failed(OPEN_NOW - timedelta(seconds=20)))
    assert (await route(sessions).check()).problems == ("email_failing",)


async def test_a_dead_letter_with_nothing_delivered_after_it_means_failing(sessions):
    await add(
        sessions, priority=Priority.normal, status=OutboxStatus.dead, attempts=10, last_error="refused",
        created_at=OPEN_NOW - timedelta(hours=6), next_attempt_at=OPEN_NOW - timedelta(hours=1),
    )
    await add(sessions, priority=Priority.normal, **sent(OPEN_NOW - timedelta(hours=7)))
    assert (await route(sessions).check()).problems == ("email_failing",)


async def test_one_transport_failing_while_the_other_delivers_still_alerts(sessions):
    await add(sessions, "email", Priority.normal, **failed(OPEN_NOW - timedelta(seconds=20)))
    await add(sessions, "webhook", Priority.normal, **sent(OPEN_NOW - timedelta(seconds=10)))
    check = await route(sessions, transports=("email", "webhook")).check()
    assert (check.route, check.problems) == (Route.alerting, ("email_failing",))


async def test_both_transports_failing_is_not_working(sessions):
    await add(sessions, "email", Priority.normal, **failed(OPEN_NOW - timedelta(seconds=20)))
    await add(sessions, "webhook", Priority.normal, **failed(OPEN_NOW - timedelta(seconds=30)))
    check = await route(sessions, transports=("email", "webhook")).check()
    assert (check.route, check.problems) == (Route.not_working, ("email_failing", "webhook_failing"))


@pytest.mark.parametrize(
    "local, opens",
    [
        (datetime(2026, 12, 5, 15, 0), "08:00 on Monday"),  # Saturday: no hours at weekends here
        (datetime(2026, 12, 7, 19, 30), "08:00 tomorrow"),  # Monday after closing
        (datetime(2026, 12, 7, 7, 0), "08:00 today"),  # Monday before opening
        (datetime(2026, 12, 9, 10, 0), "08:00 tomorrow"),  # Wednesday 9th: a listed closure
        (datetime(2026, 12, 25, 10, 0), "08:00 on Tuesday"),  # Christmas; Boxing Day observed on the 28th
    ],
)
async def test_out_of_hours_the_route_is_closed_and_names_the_next_opening(sessions, local, opens):
    now = local.replace(tzinfo=LONDON).astimezone(timezone.utc)
    check = await route(sessions, now=now, transports=("email", "webhook")).check()
    assert (check.route, check.opens) == (Route.closed, opens)


async def test_out_of_hours_is_closed_even_with_no_transport(sessions):
    saturday = datetime(2026, 12, 5, 15, 0, tzinfo=LONDON)
    assert (await route(sessions, now=saturday, transports=()).check()).route == Route.closed


async def test_a_store_that_does_not_answer_is_not_working_within_the_bound(hanging_database):
    engine = create_engine(hanging_database.postgres_url)
    try:
        started = time.monotonic()
        check = await route(session_factory(engine), timeout=0.5).check()
        elapsed = time.monotonic() - started
    finally:
        await engine.dispose()
    assert (check.route, check.problems) == (Route.not_working, ("store_unavailable",))
    # Without the bound the driver's own connect timeout (5 s) would end it; the margin is for a loaded machine.
    assert elapsed < 0.5 + 3.0
    assert hanging_database.accepted, "the check never reached the hanging server"


async def test_a_store_that_cannot_be_opened_is_not_working(down_sessions):
    check = await route(down_sessions).check()
    assert (check.route, check.problems) == (Route.not_working, ("store_unavailable",))


async def test_the_notifiers_own_records_drive_the_check_failing_then_recovered(tmp_path, sessions):
    receiver = WebhookReceiver().start()
    try:
        settings = Settings(var_dir=tmp_path / "var", notify_webhook_url=receiver.url)
        service = EscalationService(sessions, Spool(tmp_path / "spool"), ["webhook"], clinic=clinic_open_now())
        emergency = EscalationInput(
            sender_id="p-1", channel="rest", reason=Reason.emergency, priority=Priority.urgent, trigger={},
            transcript=[],
        )
        async with aiohttp.ClientSession() as http:
            notifier = Notifier(settings, service.alert_route.clinic, sessions, service, http)
            receiver.status = 500
            assert (await service.escalate(emergency)).stored
            assert await notifier.run_once() == 0
            check = await service.urgent_alert()
            assert (check.route, check.problems) == (Route.not_working, ("webhook_failing",))

            receiver.status = 200
            second = replace(emergency, sender_id="p-2")
            assert (await service.escalate(second)).stored
            assert await notifier.run_once() == 1  # the new one; the failed one waits for its backoff
        assert (await service.urgent_alert()).route == Route.alerting
    finally:
        receiver.stop()


async def test_the_service_built_from_settings_reads_the_alert_time_and_the_clinic(tmp_path, sessions):
    settings = Settings(var_dir=tmp_path / "var", notify_webhook_url="http://127.0.0.1:9/hook",
                        urgent_notify_alert_seconds=60)
    service = EscalationService.from_settings(settings, sessions, clinic=CLINIC)
    assert service.alert_route.overdue_after == timedelta(seconds=60)
    assert service.alert_route.clinic is CLINIC and service.alert_route.transports == ("webhook",)

