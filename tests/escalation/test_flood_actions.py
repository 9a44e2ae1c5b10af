"""The cap seen from the action server: the client key travels in the message metadata; no patient is refused.

The channels put the key in the metadata (tests/channels/test_rest_channel.py), Rasa sends
the latest message with it to the action, and the record builder reads it
(:func:`bot.core.escalation.record.escalation_input`). Every one of 100 invented senders still
gets the same answer from the action: its red flag is stored (own case or grouped).
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.escalation import ActionHandleAdverseEvent
from bot.core.escalation import record
from bot.core.escalation.flood import METADATA_KEY
from bot.core.escalation.service import EscalationService
from tests.escalation.conftest import clinic_open_now
from tests.escalation.flood_cases import FLOODER, PATIENT_ADDRESS, RED_FLAG, TRANSPORTS, escalations


def red_flag_tracker(sender_id: str, key: str) -> Tracker:
    latest = {
        "text": RED_FLAG,
        "intent": {"name": "report_adverse_event", "confidence": 0.97},
        "entities": [],
        "metadata": {METADATA_KEY: key},
        "safety": {"reason": "emergency", "matched_terms": ["breathing difficulty"], "personal": True},
    }
    events = [{"event": "user", "text": RED_FLAG, "timestamp": 1.0, "parse_data": latest, "input_channel": "rest"}]
    return Tracker(sender_id, {}, latest, events, False, None, {}, "action_listen")


def test_the_record_carries_the_client_key_of_the_latest_message():
    data = record.escalation_input(red_flag_tracker("p-1", FLOODER).current_state(), "emergency", None)
    assert data.client_key == FLOODER


async def test_every_invented_sender_is_answered_the_same_and_the_real_patient_gets_its_own_case(sessions, spool):
    deps.use_service(
        EscalationService(sessions, spool, TRANSPORTS, urgent_per_address_per_hour=5, clinic=clinic_open_now())
    )
    answers = []
    try:
        for n in range(100):
            dispatcher = CollectingDispatcher()
            if n == 50:
                await ActionHandleAdverseEvent().run(dispatcher, red_flag_tracker("real-patient", PATIENT_ADDRESS), {})
                real_answer = [m.get("response") for m in dispatcher.messages]
                dispatcher = CollectingDispatcher()
            await ActionHandleAdverseEvent().run(dispatcher, red_flag_tracker(f"bot-{n}", FLOODER), {})
            answers.append(tuple(m.get("response") for m in dispatcher.messages))
    finally:
        deps.use_service(None)

    assert set(answers) == {("utter_emergency_flagged",)}  # stored and staff alerted, every time
    assert real_answer == ["utter_emergency_flagged"]
    rows = await escalations(sessions)
    assert sum(1 for row in rows if row.client_key == FLOODER) == 6
    assert [row.possible_abuse for row in rows if row.sender_id == "real-patient"] == [False]
