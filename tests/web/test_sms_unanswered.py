"""The conversation view of a text conversation: why a text got no automated answer, and the segments sent.

The SMS channel keeps a text it does not answer (after STOP, over the rate limit) in the
tracker store as the patient's message, with ``metadata.sms.unanswered`` and a note
(bot/assistant/messaging/unanswered.py; tests/channels/test_twilio_no_text_lost.py checks
the channel writes exactly that). Here the web app reads it back from a real ``events``
table and a migrated store, through the real page and JSON API.
"""

from __future__ import annotations

import re
import uuid

import pytest

from bot.core.messaging import store
from bot.core.messaging.addresses import parse_address
from bot.core.messaging.segments import segments
from bot.core.store.models import Escalation, Priority, Reason, SmsOutbound, SmsOutboundStatus, utcnow
from tests.support import tracker

NUMBER = "+447700900654"
T = 1_772_442_000.0
NOTE = "Not answered automatically: this number texted STOP. Phone the patient if the message needs an answer."
LATE = "are you still there? my chest still hurts"
LONG = "Sentence of a long reply about dry needling. " * 8  # GSM-7, 360 characters: 3 segments


@pytest.fixture
def tracker_url(staff_settings) -> str:
    staff_settings.var_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{staff_settings.var_dir / 'tracker.db'}"
    tracker.create_events_table(url)
    return url


async def sms_case(sessions) -> tuple[str, str]:
    now = utcnow()
    async with sessions() as session:
        async with session.begin():
            contact = await store.contact_for(session, parse_address(NUMBER), now)
            contact.opted_out_at = now
            case = Escalation(
                id=str(uuid.uuid4()), channel="sms", sender_id=contact.sender_id, reason=Reason.human_request,
                priority=Priority.normal, trigger={"message": "hello"}, transcript=[],
            )
            session.add(case)
            await session.flush()
            await store.queue(session, contact, ["echo: hello", LONG.strip()], now, status=SmsOutboundStatus.sent)
            await store.queue(session, contact, ["withheld"], now, status=SmsOutboundStatus.suppressed,
                              reason="opted_out")
            return case.id, contact.sender_id


def unanswered(text: str, timestamp: float, reason: str, note: str) -> dict:
    event = tracker.user(text, timestamp)
    event["input_channel"] = "sms"
    event["metadata"] = {"channel": "sms", "sms": {"unanswered": reason, "note": note}}
    return event


async def test_the_page_shows_why_a_text_got_no_automated_answer_and_the_segments_sent(
    staff_client, staff_db, tracker_url
):
    case, sender_id = await sms_case(staff_db)
    tracker.append(tracker_url, sender_id, [
        tracker.user("hello", T), tracker.bot("echo: hello", T + 1),
        tracker.user("STOP", T + 5),  # answered by the channel: no note
        unanswered(LATE, T + 60, "opted_out", NOTE),
    ])

    page = await (await staff_client.get(f"/staff/escalations/{case}")).text()
    assert LATE in page
    assert page.count("No automated answer.") == 1 and NOTE in page
    assert 'data-unanswered="opted_out"' in page
    expected = segments("echo: hello") + segments(LONG.strip())
    assert expected == 4
    assert "Texts sent to this patient: 2, as\n  4 SMS segments" in page
    assert "1 withheld by rule" in page

    detail = await (await staff_client.get(f"/staff/api/escalations/{case}/conversation")).json()
    turns = [turn for turn in detail["turns"] if turn["kind"] == "patient"]
    assert [(turn["text"], turn["unanswered"]) for turn in turns] == [
        ("hello", None), ("STOP", None), (LATE, "opted_out")
    ]
    assert turns[-1]["unanswered_note"] == NOTE


async def test_a_web_chat_case_shows_no_text_count(staff_client, staff_db, tracker_url):
    async with staff_db() as session:
        async with session.begin():
            case = Escalation(id=str(uuid.uuid4()), channel="rest", sender_id="web-1", reason=Reason.human_request,
                              priority=Priority.normal, trigger={}, transcript=[])
            session.add(case)
    tracker.append(tracker_url, "web-1", [tracker.user("hello", T)])
    page = await (await staff_client.get(f"/staff/escalations/{case.id}")).text()
    assert 'id="sms-usage"' not in page and "No automated answer." not in page


async def test_the_live_update_carries_why_a_new_text_got_no_automated_answer(staff_client, staff_db, tracker_url):
    """What the open page fetches on a ``message`` event (escalation.js): the new turn with its note."""
    case, sender_id = await sms_case(staff_db)
    tracker.append(tracker_url, sender_id, [tracker.user("hello", T), tracker.bot("echo: hello", T + 1)])
    page = await (await staff_client.get(f"/staff/escalations/{case}")).text()
    since = re.search(r'data-last-event-id="(\d+)"', page).group(1)

    tracker.append(tracker_url, sender_id, [unanswered(LATE, T + 60, "rate_limited", NOTE)])
    reply = await staff_client.get(f"/staff/api/escalations/{case}/conversation?since={since}")

    assert reply.status == 200
    [turn] = (await reply.json())["turns"]
    assert (turn["kind"], turn["text"], turn["unanswered"], turn["unanswered_note"]) == (
        "patient", LATE, "rate_limited", NOTE)
