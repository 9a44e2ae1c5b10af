"""The reception display's query on a real PostgreSQL server (enum columns, aware timestamps, the ordering)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.core import clock
from bot.core.store.models import Escalation, Priority, Reason, Status
from bot.core.store.repository import EscalationInput, upsert_escalation
from bot.dashboard.web import display
from tests.support.postgres import server, sessions  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.postgres


async def escalate(sessions, sender: str, name, reason: Reason, priority: Priority, minutes_ago: int) -> str:
    data = EscalationInput(sender_id=sender, channel="socketio", reason=reason, priority=priority,
                           trigger={"reason": reason.value}, transcript=[{"from": "patient", "text": "private words"}],
                           contact_name=name, contact_method="phone", contact_detail="+447700900999",
                           consent_given=True)
    async with sessions() as session, session.begin():
        case_id = (await upsert_escalation(session, data)).record.id
        at = clock.now() - timedelta(minutes=minutes_ago)
        await session.execute(update(Escalation).where(Escalation.id == case_id).values(created_at=at))
    return case_id


async def test_open_cases_urgent_first_then_longest_waiting_on_postgres(sessions):
    normal = await escalate(sessions, "pg-d1", "Nora Normal", Reason.human_request, Priority.normal, 90)
    high = await escalate(sessions, "pg-d2", "Hal High", Reason.adverse_event, Priority.high, 3)
    urgent = await escalate(sessions, "pg-d3", "Uma Urgent", Reason.emergency, Priority.urgent, 1)
    closed = await escalate(sessions, "pg-d4", "Cy Closed", Reason.human_request, Priority.normal, 200)
    async with sessions() as session, session.begin():
        await session.execute(update(Escalation).where(Escalation.id == closed).values(status=Status.resolved))

    async with sessions() as session:
        board = await display.case_rows(session, clock.now())

    assert [row.id for row in board.rows] == [urgent, high, normal]
    assert [row.initials for row in board.rows] == ["UU", "HH", "NN"]
    assert [row.waiting for row in board.rows] == ["1 min", "3 min", "1 h 30 min"]
    assert board.total == 3 and board.unopened_urgent == 1
    assert "private words" not in str(board.as_json()) and "7700900999" not in str(board.as_json())
