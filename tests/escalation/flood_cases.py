"""The flood scenario, shared by the SQLite and PostgreSQL flood tests (tests/escalation/test_flood*.py)."""

from __future__ import annotations

import asyncio
from typing import Optional

from sqlalchemy import select

from bot.core.escalation.flood import client_key
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.store.models import Escalation, OutboxMessage, Priority, Reason
from bot.core.store.repository import EscalationInput

SECRET = "test-session-secret"
FLOODER = client_key("203.0.113.9", SECRET)
PATIENT_ADDRESS = client_key("198.51.100.20", SECRET)
TRANSPORTS = ("email", "webhook")
RED_FLAG = "I can't breathe and my chest hurts since the needling"


def red_flag(sender_id: str, key: Optional[str], channel: str = "rest", **contact: str) -> EscalationInput:
    """An emergency as the assistant records it right after the urgent guidance (no contact details yet)."""
    return EscalationInput(
        sender_id=sender_id, channel=channel, reason=Reason.emergency, priority=Priority.urgent,
        trigger={"reason": "emergency", "matched_terms": ["breathing difficulty"], "message": RED_FLAG},
        transcript=[{"from": "patient", "text": RED_FLAG, "time": 1.0}], client_key=key, **contact,
    )


async def flood(service: EscalationService, senders: int, *, concurrency: int = 10, first: int = 0) -> list:
    """Invented senders ``bot-<first>``... from one address, ``concurrency`` at a time, as a script would send them."""
    outcomes = []
    for start in range(first, first + senders, concurrency):
        numbers = range(start, min(first + senders, start + concurrency))
        batch = [service.escalate(red_flag(f"bot-{n}", FLOODER)) for n in numbers]
        outcomes += await asyncio.gather(*batch)
    return outcomes


async def escalations(sessions) -> list[Escalation]:
    async with sessions() as session:
        return list((await session.execute(select(Escalation).order_by(Escalation.created_at))).scalars())


async def notifications(sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def run_flood_with_a_real_patient(sessions, tmp_path, cap: int = 5) -> dict:
    """100 invented senders from one address, and a real red flag from another address in the middle."""
    service = EscalationService(sessions, Spool(tmp_path / "spool"), TRANSPORTS, urgent_per_address_per_hour=cap)
    first = await flood(service, 50)
    real = await service.escalate(red_flag("real-patient", PATIENT_ADDRESS, channel="socketio"))
    second = await flood(service, 50, first=50)
    return {"outcomes": first + second, "real": real, "rows": await escalations(sessions),
            "notifications": await notifications(sessions)}


def check_flood(result: dict, cap: int = 5) -> None:
    """At most the cap of urgent cases plus one grouped case; every message kept; the real patient stored and alerted."""
    rows = result["rows"]
    flooded = [row for row in rows if row.client_key == FLOODER]
    grouped = [row for row in flooded if row.possible_abuse]
    assert len(flooded) == cap + 1, [row.sender_id for row in flooded]
    assert len(grouped) == 1
    [group] = grouped
    assert group.priority == Priority.urgent and group.reason == Reason.emergency
    assert group.occurrences == 100 - cap
    # Nothing dropped: every one of the 100 messages is on a case, the excess on the grouped one.
    attached = {turn["conversation"] for turn in group.transcript}
    own = {row.sender_id for row in flooded if not row.possible_abuse}
    assert len(own) == cap and own.isdisjoint(attached)
    assert own | attached == {f"bot-{n}" for n in range(100)}
    assert all(outcome.stored for outcome in result["outcomes"])
    # The real patient's red flag: its own urgent case, and staff notified of it.
    assert result["real"].stored and result["real"].created
    [real] = [row for row in rows if row.sender_id == "real-patient"]
    assert real.priority == Priority.urgent and not real.possible_abuse
    told = {message.escalation_id for message in result["notifications"]}
    assert real.id in told
    # One alert for the grouped case, saying what it is; none for the messages attached to it.
    group_alerts = [m for m in result["notifications"] if m.escalation_id == group.id]
    assert len(group_alerts) == len(TRANSPORTS)
    assert all(m.payload.get("possible_abuse") is True for m in group_alerts)
