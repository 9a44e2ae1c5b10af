"""Any store failure spools the escalation: a database that hangs, an unexpected error; volume warnings."""

from __future__ import annotations

import logging
import time

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import deps
from actions.escalation import ActionHandleAdverseEvent
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import AuditEvent, AuditKind, Priority, Reason
from bot.core.store.repository import EscalationInput
from tests.escalation.conftest import TRANSPORTS
from tests.support.silent_server import SilentServer

BOUND = 1.0
PATIENT_TEXT = "I can't breathe properly since the needle went in near my ribs"


def escalation_input(sender_id: str = "conv-1") -> EscalationInput:
    return EscalationInput(
        sender_id=sender_id, channel="socketio", reason=Reason.emergency, priority=Priority.urgent,
        trigger={"matched_terms": ["breathing difficulty"]}, transcript=[{"from": "patient", "text": PATIENT_TEXT}],
    )


@pytest.fixture
async def hanging_service(hanging_database: SilentServer, spool: Spool):
    """The escalation service on a PostgreSQL URL whose server accepts and never answers."""
    engine = create_engine(hanging_database.postgres_url)
    try:
        yield EscalationService(session_factory(engine), spool, TRANSPORTS, store_timeout=BOUND)
    finally:
        await engine.dispose()


async def test_a_hanging_database_spools_the_escalation_within_the_bound(hanging_service, spool, hanging_database):
    started = time.monotonic()

    outcome = await hanging_service.escalate(escalation_input())

    elapsed = time.monotonic() - started
    assert (outcome.stored, outcome.spooled) == (False, True)
    assert BOUND <= elapsed < BOUND + 1.5
    assert spool.pending() == 1
    assert hanging_database.accepted, "the store attempt never reached the hanging server"


async def test_a_declined_consent_on_a_hanging_database_returns_within_the_bound(hanging_service):
    started = time.monotonic()

    assert await hanging_service.consent_declined("conv-1", "emergency") is False

    assert time.monotonic() - started < BOUND + 1.5


def red_flag_tracker() -> Tracker:
    latest = {
        "text": PATIENT_TEXT,
        "intent": {"name": "report_adverse_event", "confidence": 0.97},
        "entities": [],
        "safety": {"reason": "emergency", "matched_terms": ["breathing difficulty"], "personal": True},
    }
    events = [{"event": "user", "text": PATIENT_TEXT, "timestamp": 1.0, "parse_data": latest}]
    return Tracker("patient-1", {}, latest, events, False, None, {}, "action_listen")


async def test_the_patient_gets_the_phone_number_when_the_database_hangs(hanging_service, spool):
    deps.use_service(hanging_service)
    dispatcher = CollectingDispatcher()
    try:
        await ActionHandleAdverseEvent().run(dispatcher, red_flag_tracker(), {})
    finally:
        deps.use_service(None)

    # The urgent guidance itself comes first from the Rasa server (utter_adverse_event, bot/assistant/nlg.py).
    assert [m.get("response") for m in dispatcher.messages] == ["utter_emergency_not_flagged"]
    assert spool.pending() == 1


class BrokenSessions:
    """A session factory whose sessions fail in a way no one planned for."""

    def __call__(self):
        raise RuntimeError("an unplanned failure")


async def test_an_unexpected_store_error_spools_the_escalation(spool, caplog):
    service = EscalationService(BrokenSessions(), spool, TRANSPORTS)

    outcome = await service.escalate(escalation_input())

    assert (outcome.stored, outcome.spooled) == (False, True)
    assert spool.pending() == 1
    assert "RuntimeError" in caplog.text and PATIENT_TEXT not in caplog.text


async def test_unusual_volume_is_logged_and_audited_without_patient_data(sessions, spool, caplog):
    service = EscalationService(sessions, spool, TRANSPORTS, volume_warning_per_hour=2)

    with caplog.at_level(logging.WARNING, logger="bot.core.escalation.service"):
        for number in range(4):
            await service.escalate(escalation_input(sender_id=f"conv-{number}"))

    warnings = [r.getMessage() for r in caplog.records if "unusual escalation volume" in r.getMessage()]
    assert warnings == ["unusual escalation volume: 3 escalations created in the last hour (warning threshold 2)"]
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.kind == AuditKind.unusual_volume)
        [event] = list((await session.execute(query)).scalars())
    assert event.detail == {"created_last_hour": 3, "warning_threshold": 2}
    assert PATIENT_TEXT not in caplog.text and "conv-" not in caplog.text
