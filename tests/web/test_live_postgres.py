"""The event stream's two polling queries on a real PostgreSQL server (escalations and Rasa's events).

The stream itself is tested over HTTP in test_live.py (SQLite); here the queries it runs
every two seconds meet PostgreSQL's types (aware timestamps, the JSON column, Rasa's
float timestamps) and the overlap window that catches rows committed out of order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.core import clock
from bot.core.store.models import Priority, Reason
from bot.core.store.repository import EscalationInput, upsert_escalation
from bot.dashboard.staff import cases
from bot.dashboard.staff.conversation import TrackerReader
from bot.dashboard.web import live
from tests.support import tracker
from tests.support.postgres import server, sessions  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Actor:
    id: int
    username: str


async def escalate(sessions, sender: str) -> str:
    data = EscalationInput(sender_id=sender, channel="socketio", reason=Reason.emergency, priority=Priority.urgent,
                           trigger={"reason": "emergency"}, transcript=[])
    async with sessions() as session, session.begin():
        return (await upsert_escalation(session, data)).record.id


async def test_new_and_changed_escalations_are_found_once_each_on_postgres(sessions):
    cursor = live.Cursor(changed=clock.now() - timedelta(minutes=1), event_id=0)
    case_id = await escalate(sessions, "pg-1")

    first = await live.escalation_changes(sessions, cursor)
    again = await live.escalation_changes(sessions, cursor)
    await cases.set_status(sessions, case_id, Actor(0, "sam"), "in_progress")
    changed = await live.escalation_changes(sessions, cursor)

    assert first == [{"id": case_id, "change": "created", "status": "new", "priority": "urgent", "urgent": True}]
    assert again == []
    assert [(item["id"], item["change"], item["status"]) for item in changed] == [(case_id, "updated", "in_progress")]


async def test_patient_messages_of_escalated_conversations_are_found_on_postgres(server, sessions):
    tracker.create_events_table(server.url)
    case_id = await escalate(sessions, "pg-2")
    reader = TrackerReader(server.url)
    try:
        cursor = live.Cursor(changed=clock.now(), event_id=await reader.last_event_id())
        start = clock.now().timestamp()
        tracker.append(server.url, "pg-2", [tracker.user("hello?", start), tracker.bot("Hi", start + 1)])
        tracker.append(server.url, "not-escalated", [tracker.user("hi", start + 2)])

        found = await live.patient_messages(sessions, reader, cursor)
        again = await live.patient_messages(sessions, reader, cursor)
    finally:
        await reader.close()

    assert [item["id"] for item in found] == [case_id]
    assert found[0]["event_id"] > 0
    assert again == []
