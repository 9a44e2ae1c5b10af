"""Arranging escalations and staff accounts in a test store (case work, API and export tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot.core.clinic import Clinic
from bot.core.store.models import Escalation, Priority, Reason, StaffUser, Status

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday
CLINIC = Clinic(
    name="Riverside Physiotherapy", phone="020 7946 0958", booking_url="https://clinic.example/book",
    timezone="Europe/London", opening_hours={day: ["08:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    follow_up_within_hours=2,
)


@dataclass(frozen=True)
class Actor:
    id: int
    username: str


async def add_user(sessions, username: str, display_name: str = "", disabled: bool = False) -> Actor:
    async with sessions() as session, session.begin():
        user = StaffUser(username=username, display_name=display_name or username.title(), password_hash="x",
                         disabled_at=T0 if disabled else None)
        session.add(user)
        await session.flush()
        return Actor(user.id, user.username)


async def add_case(
    sessions,
    *,
    minutes: int = 0,
    reason: Reason = Reason.contraindication,
    priority: Priority = Priority.normal,
    status: Status = Status.new,
    channel: str = "rest",
    sender: str = "",
    contact_name: str = None,
    contact_detail: str = None,
    patient: str = "Is dry needling safe for me?",
    assistant: str = "A member of the team will look at this.",
    consent_at: datetime = None,
    assignee: Actor = None,
) -> str:
    case_id = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        session.add(Escalation(
            id=case_id, created_at=T0 + timedelta(minutes=minutes), updated_at=T0 + timedelta(minutes=minutes),
            channel=channel, sender_id=sender or f"conv-{case_id}", reason=reason, priority=priority, status=status,
            trigger={"intent": "ask_contraindication", "confidence": 0.91, "matched_terms": ["pregnancy:pregnant"],
                     "message": patient, "at": (T0 + timedelta(minutes=minutes)).isoformat()},
            transcript=[{"from": "patient", "text": patient}, {"from": "assistant", "text": assistant}],
            contact_name=contact_name, contact_detail=contact_detail, contact_method="phone" if contact_detail else None,
            consent_given=consent_at is not None or None, consent_at=consent_at,
            assignee_id=assignee.id if assignee else None, assignee=assignee.username if assignee else None,
            resolved_at=T0 if status == Status.resolved else None,
        ))
    return case_id
