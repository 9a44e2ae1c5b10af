"""One emergency message, written by both processes: the Rasa server's spooled copy and the action server's.

The Rasa server spools the record when the action server does not answer in time
(bot/assistant/servers/action_client.py); a hung action server that wakes up later still handles the
request it was sent and stores the same record. Whichever comes first, the store keeps one
record, counted once, with one audit trail and one notification: the write is keyed by the
patient message (Rasa's message id). A new message in the same conversation still counts.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.assistant.servers.action_client import LocalFallback
from bot.core.escalation import record
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.store.models import AuditEvent, AuditKind, Escalation, OutboxMessage, Priority, Reason

RED_FLAG = "since my needling this morning i cant catch my breath"
EMERGENCY = {"reason": "emergency", "red_flag_class": "breathing", "care": "999", "matched_terms": ["breathing:cant breathe"]}


def state(*message_ids: str, sender: str = "patient-9") -> dict:
    """Tracker state as Rasa sends it to an action: one red-flag user event per message id."""
    events = []
    for number, message_id in enumerate(message_ids):
        parse = {"text": RED_FLAG, "intent": {"name": "report_adverse_event", "confidence": 0.97},
                 "entities": [], "safety": EMERGENCY}
        events.append({"event": "user", "timestamp": 1000.0 + number, "text": RED_FLAG, "parse_data": parse,
                       "input_channel": "rest", "message_id": message_id, "metadata": {}})
    return {"sender_id": sender, "slots": {}, "latest_message": events[-1]["parse_data"], "events": events,
            "latest_input_channel": "rest"}


def action_server_write(tracker_state: dict):
    """What the action server's ``action_handle_adverse_event`` stores for this state."""
    return record.escalation_input(tracker_state, "emergency", None, record.trigger_of(tracker_state, "emergency"),
                                   contact_given=True)


async def rows(sessions, model, **where):
    async with sessions() as session:
        query = select(model).filter_by(**where)
        return list((await session.execute(query)).scalars())


async def audits(sessions, kind: AuditKind) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == kind)
        return (await session.execute(query)).scalar_one()


async def test_the_spooled_copy_of_a_message_the_action_server_stored_late_is_not_counted_again(
    sessions, spool: Spool, service: EscalationService
):
    one = state("msg-1")
    await LocalFallback(spool).incident(one)  # the Rasa server: no answer in time, spooled
    outcome = await service.escalate(action_server_write(one))  # the action server wakes up and stores it
    assert outcome.stored and outcome.created

    assert await spool.replay(service.store_spooled) == 1  # replayed: accepted, and changes nothing
    [escalation] = await rows(sessions, Escalation, sender_id="patient-9")
    assert (escalation.reason, escalation.priority, escalation.occurrences) == (Reason.emergency, Priority.urgent, 1)
    assert escalation.trigger.get("history") in (None, [])
    assert await audits(sessions, AuditKind.red_flag_triggered) == 1
    assert await audits(sessions, AuditKind.escalation_updated) == 0
    assert len(await rows(sessions, OutboxMessage, escalation_id=escalation.id)) == 2  # email and webhook, once
    assert spool.pending() == 0


async def test_a_late_action_server_write_after_the_replay_is_not_counted_again(sessions, spool, service):
    one = state("msg-1")
    await LocalFallback(spool).incident(one)
    assert await spool.replay(service.store_spooled) == 1  # the web app replays first

    outcome = await service.escalate(action_server_write(one))  # then the late action server
    assert outcome.stored and not outcome.created and not outcome.spooled
    [escalation] = await rows(sessions, Escalation, sender_id="patient-9")
    assert escalation.occurrences == 1 and escalation.id == outcome.escalation_id
    assert await audits(sessions, AuditKind.red_flag_triggered) == 1
    assert await audits(sessions, AuditKind.recovered_from_spool) == 1


async def test_both_copies_spooled_are_replayed_into_one_record(sessions, spool, service, down_service):
    one = state("msg-1")
    await LocalFallback(spool).incident(one)
    outcome = await down_service.escalate(action_server_write(one))  # the store was down for the action server too
    assert outcome.spooled and spool.pending() == 2

    assert await spool.replay(service.store_spooled) == 2
    [escalation] = await rows(sessions, Escalation, sender_id="patient-9")
    assert escalation.occurrences == 1


async def test_a_new_message_in_the_conversation_still_counts_as_a_repeat_of_the_red_flag(sessions, spool, service):
    await LocalFallback(spool).incident(state("msg-1"))
    await service.escalate(action_server_write(state("msg-1")))
    await service.escalate(action_server_write(state("msg-1", "msg-2")))  # the patient wrote again
    await spool.replay(service.store_spooled)

    [escalation] = await rows(sessions, Escalation, sender_id="patient-9")
    assert escalation.occurrences == 2
    assert record.message_id_of(state("msg-1", "msg-2")) == "msg-2"
    assert [item.get("written_for") for item in escalation.trigger["history"]] == ["msg-1"]
