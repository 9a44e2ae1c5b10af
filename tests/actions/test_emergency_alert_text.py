"""What a patient reads after the emergency guidance: "alerted as urgent" only when that is true now.

ActionHandleAdverseEvent against the real escalation service on a SQLite store, with the
clinic's hours and the clock fixed: alerted (open, a transport delivering), stored but no
working route, stored out of hours (when the team will see it, and not to wait), spooled.
The out-of-hours text is rendered by the Rasa server's generator from domain.yml.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Optional
from zoneinfo import ZoneInfo

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import sessionmaker

from actions import deps
from actions.escalation import ActionHandleAdverseEvent
from bot.assistant.nlg import ClinicNLG
from bot.core.clinic import Clinic, load_clinic
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.settings import REPO_ROOT
from bot.core.store import repository as repo
from bot.core.store.models import OutboxStatus, Priority
from tests.escalation.conftest import down_sessions  # noqa: F401 - a store that cannot be opened

LONDON = ZoneInfo("Europe/London")
CLINIC = load_clinic(REPO_ROOT / "clinic.yml")  # Mon-Thu 08:00-19:00, Fri 08:00-17:00, Sat 09:00-13:00
MONDAY_10 = datetime(2026, 12, 7, 10, 0, tzinfo=LONDON)
SATURDAY_15 = datetime(2026, 12, 5, 15, 0, tzinfo=LONDON)
CHRISTMAS_10 = datetime(2026, 12, 25, 10, 0, tzinfo=LONDON)
RED_FLAG = {"reason": "emergency", "red_flag_class": "breathing", "care": "999", "personal": True,
            "matched_terms": ["breathing:cant breathe"]}


def red_flag(sender: str = "patient-1") -> Tracker:
    latest = {"text": "i cant breathe", "intent": {"name": "report_adverse_event", "confidence": 1.0},
              "entities": [], "safety": RED_FLAG}
    events = [{"event": "user", "text": latest["text"], "timestamp": 1.0, "parse_data": latest}]
    return Tracker(sender, {}, latest, events, False, None, {}, "action_listen")


@pytest.fixture
def use(sessions: sessionmaker, tmp_path: Path) -> Iterator:
    """Install an escalation service with these transports, at this moment, for the action."""

    def install(now: datetime, transports: tuple[str, ...] = ("email",), db: Optional[sessionmaker] = None,
                clinic: Optional[Clinic] = CLINIC) -> EscalationService:
        service = EscalationService(
            db or sessions, Spool(tmp_path / "spool"), transports, store_timeout=2.0, clinic=clinic,
            urgent_alert_after=timedelta(seconds=300), clock=lambda: now.astimezone(timezone.utc),
        )
        deps.use_service(service)
        return service

    yield install
    deps.use_service(None)


async def answer(sender: str = "patient-1") -> list[dict]:
    dispatcher = CollectingDispatcher()
    await ActionHandleAdverseEvent().run(dispatcher, red_flag(sender), {})
    return dispatcher.messages


async def test_open_clinic_and_a_delivering_transport_says_the_team_was_alerted(use):
    use(MONDAY_10)
    assert [m["response"] for m in await answer()] == ["utter_emergency_flagged"]


async def test_no_transport_configured_says_stored_not_alerted(use):
    use(MONDAY_10, transports=())
    assert [m["response"] for m in await answer()] == ["utter_emergency_stored"]


async def test_a_failing_transport_says_stored_not_alerted(use, sessions):
    now = MONDAY_10.astimezone(timezone.utc)
    async with sessions() as session:
        async with session.begin():
            row = await repo.enqueue_notification(session, "esc-0", "email", {}, Priority.normal)
            row.created_at, row.attempts, row.last_error = now - timedelta(seconds=60), 1, "refused"
            row.next_attempt_at = now - timedelta(seconds=30) + repo.backoff(1)
    use(MONDAY_10)
    assert [m["response"] for m in await answer()] == ["utter_emergency_stored"]


async def test_an_urgent_notification_overdue_says_stored_not_alerted(use, sessions):
    long_ago = MONDAY_10.astimezone(timezone.utc) - timedelta(minutes=10)
    async with sessions() as session:
        async with session.begin():
            row = await repo.enqueue_notification(session, "esc-0", "email", {}, Priority.urgent)
            row.created_at = row.next_attempt_at = long_ago
    use(MONDAY_10)
    assert [m["response"] for m in await answer()] == ["utter_emergency_stored"]


async def test_after_a_delivery_the_next_emergency_is_alerted(use, sessions):
    sent_at = MONDAY_10.astimezone(timezone.utc) - timedelta(minutes=1)
    async with sessions() as session:
        async with session.begin():
            row = await repo.enqueue_notification(session, "esc-0", "email", {}, Priority.urgent)
            row.status, row.sent_at, row.attempts, row.created_at = OutboxStatus.sent, sent_at, 1, sent_at
    use(MONDAY_10)
    assert [m["response"] for m in await answer()] == ["utter_emergency_flagged"]


@pytest.mark.parametrize(
    "now, opens",
    # Saturday after 13:00; Christmas Day, then Boxing Day (a Saturday, a bank holiday), Sunday
    # and the observed Boxing Day on Monday 28th.
    [(SATURDAY_15, "08:00 on Monday"), (CHRISTMAS_10, "08:00 on Tuesday")],
)
async def test_out_of_hours_says_when_the_team_will_see_it_even_with_a_working_route(use, now, opens):
    use(now, transports=("email", "webhook"))
    assert [(m["response"], m.get("clinic_opens")) for m in await answer()] == [
        ("utter_emergency_stored_closed", opens)
    ]


async def test_the_store_down_says_not_flagged_even_with_a_working_route(use, down_sessions):
    use(MONDAY_10, db=down_sessions)
    assert [m["response"] for m in await answer()] == ["utter_emergency_not_flagged"]


async def test_a_service_without_clinic_hours_never_says_alerted(use):
    use(MONDAY_10, clinic=None)
    assert [m["response"] for m in await answer()] == ["utter_emergency_stored"]


async def test_the_out_of_hours_text_names_the_opening_and_says_not_to_wait():
    domain = Domain.load([str(REPO_ROOT / "domain.yml"), str(REPO_ROOT / "data" / "responses" / "safety.yml")])
    nlg = ClinicNLG(domain=domain, clinic=CLINIC)
    parse = {"intent": {"name": "report_adverse_event", "confidence": 1.0}, "entities": [], "safety": RED_FLAG}
    state = DialogueStateTracker.from_events("p", [UserUttered("i cant breathe", parse["intent"], [], parse)],
                                             slots=domain.slots)
    message = await nlg.generate("utter_emergency_stored_closed", state, "rest", clinic_opens="08:00 on Monday")
    text = " ".join(message["text"].split())
    assert "until we open at 08:00 on Monday" in text
    assert "don't wait" in text and CLINIC.emergency_number in text and "A&E" in text and CLINIC.urgent_care in text
    assert CLINIC.name in text and "alerted" not in text and "{" not in text
