"""Opening an urgent case's page is what stops the on-call alerts (bot/core/escalation/on_call.py).

The page records ``case_opened`` in the audit trail the first time a staff member opens an
urgent case, with their username; other cases are not recorded.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.core.store.models import AuditEvent, AuditKind, Priority, Reason
from tests.web.test_pages import escalate, staff_settings, tracker_db  # noqa: F401 - fixtures of the page tests


async def opened(staff_db, case_id: str) -> list[AuditEvent]:
    async with staff_db() as session:
        query = select(AuditEvent).where(AuditEvent.escalation_id == case_id, AuditEvent.kind == AuditKind.case_opened)
        return list((await session.execute(query)).scalars())


async def test_the_first_opening_of_an_urgent_case_is_audited_with_who_opened_it(staff_client, staff_db):
    urgent = await escalate(staff_db, "s-u", reason=Reason.emergency, priority=Priority.urgent)
    normal = await escalate(staff_db, "s-n")

    for _ in range(2):
        assert (await staff_client.get(f"/staff/escalations/{urgent}")).status == 200
    assert (await staff_client.get(f"/staff/escalations/{normal}")).status == 200

    [event] = await opened(staff_db, urgent)
    assert event.actor == "sam" and event.detail == {}
    assert await opened(staff_db, normal) == []
