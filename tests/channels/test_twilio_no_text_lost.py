"""Issue 22, items 5 and 6: no patient text is dropped, and urgent texts come first and cheap.

Every text is kept in the conversation staff read (Rasa's tracker store), whatever the
limits: after STOP (screened; a red flag is an urgent case for staff to phone, with no text
to the patient), over the rate limit (never applied while staff text the patient), past the
daily cap (urgent guidance still goes out). A new number's red flag gets the urgent guidance
first, the disclosure after it in one segment; an FAQ answer by text takes at most 2 segments.

A real Sanic server with the scripted agent (:mod:`tests.support.sms_channel`), a migrated
SQLite store and the fake Twilio API, as in ``test_twilio_webhook.py``.
"""

from __future__ import annotations

import pytest
import yaml
from rasa.shared.core.events import ConversationPaused, UserUttered

from bot.assistant.channels.live_chats import urgent_guidance
from bot.assistant.messaging.degraded import DOMAIN
from bot.core.messaging.segments import segments
from bot.core.store import chat, repository as repo
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import Escalation, Priority, Reason, SmsOutbound, SmsOutboundStatus, utcnow
from tests.support.fake_twilio import inbound
from tests.support.sms_channel import RED_FLAG, ScriptedAgent, start_sms_server, stop_sms_server

PATIENT = "+447700900321"
STILL_THERE = "are you still there? my chest still hurts"


@pytest.fixture
async def serve(db_url, fake_twilio):
    started = []

    async def start(**overrides):
        fake_twilio.clear()
        sms, server = await start_sms_server(db_url, fake_twilio, **overrides)
        started.append((sms, server))
        return sms

    yield start
    for sms, server in started:
        await stop_sms_server(sms, server)


async def patient_events(sms, address: str = PATIENT) -> list[UserUttered]:
    contact = await sms.contact(address)
    tracker = await sms.agent.tracker_store.retrieve(contact.sender_id)
    return [event for event in (tracker.events if tracker else []) if isinstance(event, UserUttered)]


def reason_of(event: UserUttered):
    return ((event.metadata or {}).get("sms") or {}).get("unanswered")


async def stopped(sms) -> None:
    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 1)
    await sms.text(inbound(PATIENT, "STOP"))
    await sms.sent_to(PATIENT, 2)


# ---- after STOP ---------------------------------------------------------------------------------

async def test_a_text_after_stop_is_stored_and_shown_with_why_and_gets_no_reply(serve):
    sms = await serve()
    await stopped(sms)
    await sms.text(inbound(PATIENT, STILL_THERE))
    await sms.settle()

    assert len(sms.bodies(PATIENT)) == 2  # "echo: hello" and STOP's one confirmation, nothing after
    assert [m.text for m in sms.agent.received] == ["hello"]  # the assistant did not answer it
    last = (await patient_events(sms))[-1]
    assert last.text == STILL_THERE and reason_of(last) == "opted_out"
    assert "STOP" in last.metadata["sms"]["note"]
    assert last.parse_data["safety"] == {} and last.parse_data["intent"]["name"] == "faq"  # screened, no red flag
    assert await sms.rows(Escalation) == []


async def test_a_red_flag_after_stop_raises_an_urgent_case_to_phone_without_texting(serve):
    sms = await serve()
    await stopped(sms)
    await sms.text(inbound(PATIENT, RED_FLAG))
    await sms.settle()

    assert len(sms.bodies(PATIENT)) == 2
    [case] = await sms.rows(Escalation)
    assert case.reason == Reason.emergency and case.priority == Priority(case.priority.value)
    assert case.contact_method == "phone" and case.contact_detail == PATIENT
    assert case.sender_id == (await sms.contact(PATIENT)).sender_id
    assert case.trigger["message"] == RED_FLAG and case.trigger["unanswered"] == "opted_out"
    last = (await patient_events(sms))[-1]
    assert last.text == RED_FLAG and last.parse_data["safety"]["reason"] == "emergency"
    assert not [row for row in await sms.rows(SmsOutbound) if row.body and RED_FLAG in row.body]


# ---- over the rate limit --------------------------------------------------------------------------

async def test_no_text_over_the_rate_limit_is_lost(serve):
    sms = await serve(sms_messages_per_minute=3)
    sent = [f"message {i}" for i in range(5)] + ["call me after 3 please"]
    for text in sent:
        await sms.text(inbound(PATIENT, text))
    await sms.settle(0.6)

    events = await patient_events(sms)
    assert [event.text for event in events] == sent  # every one kept, in order
    assert [reason_of(event) for event in events] == [None] * 3 + ["rate_limited"] * 3
    assert len(sms.agent.received) == 3
    assert sum("faster than I can answer" in text for text in sms.bodies(PATIENT)) == 1


async def test_a_red_flag_over_the_rate_limit_is_answered(serve):
    sms = await serve(sms_messages_per_minute=2)
    for i in range(3):
        await sms.text(inbound(PATIENT, f"message {i}"))
    await sms.text(inbound(PATIENT, RED_FLAG))
    texts = await sms.sent_to(PATIENT, 4)
    assert texts[-1] == f"echo: {RED_FLAG}"
    assert sms.agent.received[-1].text == RED_FLAG


async def test_the_rate_limit_never_applies_while_staff_text_the_patient(serve):
    sms = await serve(sms_messages_per_minute=2)
    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 1)
    sender_id = (await sms.contact(PATIENT)).sender_id
    engine = create_engine(sms.db_url)
    async with session_factory(engine)() as session:
        async with session.begin():
            data = repo.EscalationInput(sender_id=sender_id, channel="sms", reason=Reason.human_request,
                                        priority=Priority.normal, trigger={}, transcript=[])
            escalation_id = (await repo.upsert_escalation(session, data)).record.id
            await chat.start_takeover(session, escalation_id=escalation_id, sender_id=sender_id, user_id=None,
                                      username="sam", name="Sam Staff", now=utcnow())
    await engine.dispose()
    tracker = await sms.agent.tracker_store.retrieve(sender_id)
    tracker.update(ConversationPaused())
    await sms.agent.tracker_store.save(tracker)

    replies = ["call me after 3 please", "or tomorrow", "thanks", "bye"]
    for text in replies:
        await sms.text(inbound(PATIENT, text))
    await sms.settle(0.6)

    assert [m.text for m in sms.agent.received] == ["hello"] + replies  # all read, none limited
    assert not any("faster than I can answer" in text for text in sms.bodies(PATIENT))
    events = await patient_events(sms)
    assert [event.text for event in events][-4:] == replies and not any(reason_of(e) for e in events)


# ---- past the daily cap -------------------------------------------------------------------------

async def test_urgent_guidance_goes_out_past_the_daily_cap(serve):
    sms = await serve(sms_daily_outbound_cap=3)
    for i in range(4):
        await sms.text(inbound(PATIENT, f"question {i}"))
    await sms.settle(0.4)
    assert "today's limit" in sms.bodies(PATIENT)[-1]

    await sms.text(inbound(PATIENT, RED_FLAG))
    texts = await sms.sent_to(PATIENT, 4)
    assert texts[-1] == f"echo: {RED_FLAG}"
    withheld = [row for row in await sms.rows(SmsOutbound) if row.status == SmsOutboundStatus.suppressed]
    assert withheld and all(RED_FLAG not in row.body for row in withheld)


# ---- order and segments -------------------------------------------------------------------------

def red_flag_with_opening(sms, agent: ScriptedAgent):
    """The assistant's own first turn on a red flag: its SMS opening, then the urgent guidance."""
    clinic = sms.channel.clinic
    variants = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))["responses"]["utter_disclosure"]
    sms_variant = next(v["text"] for v in variants if v.get("channel") == "clinic_sms")
    opening = " ".join(sms_variant.split()).format_map(clinic.template_values())
    guidance = urgent_guidance(clinic)

    async def handle(message):
        agent.received.append(message)
        tracker = await agent.tracker_store.get_or_create_tracker(message.sender_id)
        tracker.update(UserUttered(message.text, parse_data=agent.verdict(message.text), message_id=message.message_id))
        await agent.tracker_store.save(tracker)
        await message.output_channel.send_response(message.sender_id, {"text": opening, "utter_action": "utter_disclosure"})
        await message.output_channel.send_response(
            message.sender_id, {"text": guidance, "utter_action": "utter_red_flag_urgent"}
        )

    return handle, guidance


async def test_a_first_contact_red_flag_gets_the_urgent_guidance_first_then_a_one_segment_disclosure(serve):
    sms = await serve()
    handle, guidance = red_flag_with_opening(sms, sms.agent)
    sms.agent.handle_message = handle
    await sms.text(inbound(PATIENT, RED_FLAG))
    await sms.settle(0.6)
    everything = sms.fake.bodies(PATIENT)

    emergency = sms.channel.clinic.emergency_number
    assert emergency == "999" and emergency in everything[0]
    first = everything[0].split(") ", 1)[1] if everything[0].startswith("(1/") else everything[0]
    assert guidance.startswith(first)  # the first text is the urgent guidance itself
    disclosure = sms.channel.texts.render("urgent_disclosure", sms.channel.clinic)
    assert disclosure in everything and segments(disclosure) == 1
    assert "don't send detailed medical information" in disclosure
    assert everything.index(disclosure) == len(everything) - 1  # after all of the guidance
    assert not any("Reply STOP to stop" in body for body in everything)  # the long opening is replaced


async def test_an_ordinary_first_text_keeps_the_assistants_opening_first(serve):
    sms = await serve()

    async def with_opening(message):
        await message.output_channel.send_response(
            message.sender_id, {"text": "I'm the clinic's automated assistant.", "utter_action": "utter_disclosure"}
        )
        await message.output_channel.send_response(message.sender_id, {"text": "echo"})

    sms.agent.handle_message = with_opening
    await sms.text(inbound(PATIENT, "hi"))
    await sms.settle(0.4)
    assert sms.fake.bodies(PATIENT) == ["I'm the clinic's automated assistant.", "echo"]


async def test_an_faq_answer_by_text_takes_at_most_two_segments(serve):
    sms = await serve()
    longest = max(sms.channel.short_answers.texts, key=lambda name: len(sms.channel.short_answers.texts[name]))

    async def faq(message):
        await message.output_channel.send_response(
            message.sender_id, {"text": "The full answer. " * 30, "utter_action": longest}
        )

    sms.agent.handle_message = faq
    await sms.text(inbound(PATIENT, "how much does it cost"))
    [answer] = await sms.sent_to(PATIENT, 1)
    assert answer.startswith(sms.channel.short_answers.texts[longest])
    assert "Reply MORE" in answer and segments(answer) <= 2


async def test_a_red_flag_with_a_picture_gets_the_urgent_answer_before_the_picture_notice(serve):
    sms = await serve()
    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 1)
    await sms.text(inbound(PATIENT, RED_FLAG, media=1))
    texts = await sms.sent_to(PATIENT, 3)
    assert texts[1] == f"echo: {RED_FLAG}" and "not the picture" in texts[2]
