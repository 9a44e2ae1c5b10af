"""The SMS/WhatsApp channel's webhook: signatures, duplicates, malformed requests, keywords, SMS-native replies.

A real Sanic server hosts the channel as ``rasa run`` would, with a scripted agent
(:mod:`tests.support.sms_channel`), a migrated SQLite store and the fake Twilio API;
every patient text is signed with ``RequestValidator`` as Twilio signs it.
"""

from __future__ import annotations

import logging

import pytest

from bot.assistant.messaging.chunks import sentences
from bot.core.store.models import AuditEvent, AuditKind, SmsInbound, SmsOutbound, SmsOutboundStatus
from tests.support.fake_twilio import FROM_NUMBER, WHATSAPP_FROM, inbound, message_sid
from tests.support.sms_channel import LONG, MENU, start_sms_server, stop_sms_server

PATIENT = "+447700900123"
CANARY = "Zebulon Quartzfeather"


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


@pytest.fixture
async def sms(serve):
    return await serve()


async def test_a_signed_text_reaches_the_assistant_under_a_random_id_and_the_reply_goes_back(sms):
    status, body = await sms.text(inbound(PATIENT, "hello there"))

    assert status == 200 and "<Response>" in body
    [message] = sms.agent.received
    assert message.text == "hello there"
    assert message.sender_id.startswith("sms-") and "7700900123" not in message.sender_id
    assert message.input_channel == "sms"
    assert await sms.sent_to(PATIENT, 1) == ["echo: hello there"]
    assert sms.fake.sent[-1].sender == FROM_NUMBER
    assert sms.fake.sent[-1].status_callback.startswith(sms.status_url + "?ref=")


async def test_the_same_number_keeps_one_conversation(sms):
    await sms.text(inbound(PATIENT, "one"))
    await sms.text(inbound(PATIENT, "two"))
    assert len({m.sender_id for m in sms.agent.received}) == 1


@pytest.mark.parametrize("signature", [None, "", "c2lnbmF0dXJl", "wrong-signature"])
async def test_a_missing_or_wrong_signature_is_refused_with_403_and_nothing_is_read_or_sent(sms, signature, caplog):
    caplog.set_level(logging.DEBUG)
    status, _ = await sms.text(inbound(PATIENT, f"my name is {CANARY}"), signature=signature)

    assert status == 403
    assert sms.agent.received == []
    await sms.settle()
    assert sms.fake.sent == []
    assert await sms.rows(SmsInbound) == []
    logged = caplog.text
    assert "signature" in logged
    assert CANARY not in logged and "7700900123" not in logged


async def test_a_signature_for_another_url_is_refused(sms):
    status, _ = await sms.text(inbound(PATIENT, "hello"), public_url="https://attacker.example/webhooks/twilio/webhook")
    assert status == 403


async def test_a_body_changed_after_signing_is_refused(sms):
    params = inbound(PATIENT, "hello")
    from tests.support.fake_twilio import sign

    signature = sign(sms.webhook, params)
    params["From"] = "+447700900999"  # someone else's number
    status, _ = await sms.text(params, signature=signature)
    assert status == 403


async def test_a_duplicate_message_sid_is_processed_once(sms):
    params = inbound(PATIENT, "are you there?")

    first = await sms.text(params)
    second = await sms.text(params)

    assert first[0] == second[0] == 200
    assert len(sms.agent.received) == 1
    await sms.settle()
    assert sms.bodies(PATIENT) == ["echo: are you there?"]


@pytest.mark.parametrize(
    "params",
    [
        {"MessageSid": message_sid(), "Body": "no sender"},
        {"MessageSid": message_sid(), "From": "not a number", "Body": "hi"},
        {"MessageSid": "SM-bad", "From": PATIENT, "Body": "hi"},
        {"From": PATIENT, "Body": "no sid"},
        {"MessageSid": message_sid(), "From": PATIENT},
        {"MessageSid": message_sid(), "From": PATIENT, "Body": "hi", "NumMedia": "many"},
        {"MessageSid": message_sid(), "From": PATIENT, "Body": "hi", "NumMedia": "-1"},
        {},
    ],
)
async def test_a_malformed_signed_request_gets_400_never_500(sms, params):
    status, _ = await sms.text(params)
    assert status == 400
    assert sms.agent.received == []


async def test_a_body_that_is_not_text_gets_400(sms):
    status, _ = await sms.text({}, raw=b"\xff\xfe\x00binary", signature="anything")
    assert status == 400


async def test_an_oversized_body_gets_400(sms):
    status, _ = await sms.text(inbound(PATIENT, "x" * (70 * 1024)))
    assert status == 400


async def test_buttons_become_numbered_choices_without_payloads(sms):
    await sms.text(inbound(PATIENT, "menu"))
    [text] = await sms.sent_to(PATIENT, 1)

    assert text.startswith(MENU["text"])
    assert text.endswith('Reply 1 for "What is it?", 2 for "Does it hurt?" or 3 for "Talk to a person".')
    assert "/request_human" not in text


@pytest.mark.parametrize("reply, expected", [("3", "/request_human"), ("1.", "What is dry needling?"),
                                             ("does it hurt", "Does it hurt?"), ("Talk to a person!", "/request_human")])
async def test_a_number_or_the_words_of_a_choice_select_it(sms, reply, expected):
    await sms.text(inbound(PATIENT, "menu"))
    await sms.text(inbound(PATIENT, reply))
    assert sms.agent.received[-1].text == expected


async def test_a_number_after_a_turn_without_choices_is_an_ordinary_message(sms):
    await sms.text(inbound(PATIENT, "menu"))
    await sms.text(inbound(PATIENT, "something else"))
    await sms.text(inbound(PATIENT, "2"))
    assert sms.agent.received[-1].text == "2"


async def test_a_long_answer_is_split_at_sentences_into_marked_parts_sent_in_order(sms):
    await sms.text(inbound(PATIENT, "long"))
    await sms.sent_to(PATIENT, 4)  # one part per sender pass: on a busy machine that takes a while
    await sms.settle()
    parts = sms.bodies(PATIENT)

    assert len(parts) == 4
    assert all(len(part) <= 320 for part in parts)
    assert [part[:6] for part in parts] == ["(1/4) ", "(2/4) ", "(3/4) ", "(4/4) "]
    assert " ".join(part[6:] for part in parts) == LONG
    assert all(part.endswith(".") for part in parts)  # cut between sentences
    assert sum(len(sentences(part[6:])) for part in parts) == len(sentences(LONG))


async def test_stop_opts_out_then_nothing_is_sent_or_read_until_start(sms):
    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 1)

    await sms.text(inbound(PATIENT, "Stop"))
    confirmation = (await sms.sent_to(PATIENT, 2))[-1]
    assert "START" in confirmation and "won't get any more texts" in confirmation
    assert (await sms.contact(PATIENT)).opted_out_at is not None

    await sms.text(inbound(PATIENT, "I have another question"))
    await sms.text(inbound(PATIENT, "HELP"))
    await sms.settle()
    assert len(sms.bodies(PATIENT)) == 2
    assert [m.text for m in sms.agent.received] == ["hello"]

    await sms.text(inbound(PATIENT, "start"))
    resubscribed = (await sms.sent_to(PATIENT, 3))[-1]
    assert "subscribed again" in resubscribed
    await sms.text(inbound(PATIENT, "back again"))
    assert (await sms.sent_to(PATIENT, 4))[-1] == "echo: back again"
    kinds = [event.kind for event in await sms.rows(AuditEvent)]
    assert AuditKind.sms_opted_out in kinds and AuditKind.sms_opted_in in kinds


@pytest.mark.parametrize("word", ["UNSUBSCRIBE", "cancel", "End.", "quit", "stopall"])
async def test_every_opt_out_word_opts_out(sms, word):
    await sms.text(inbound(PATIENT, word))
    await sms.sent_to(PATIENT, 1)
    assert (await sms.contact(PATIENT)).opted_out_at is not None
    assert sms.agent.received == []


async def test_stop_inside_a_sentence_is_an_ordinary_message(sms):
    await sms.text(inbound(PATIENT, "please stop the form"))
    assert sms.agent.received[0].text == "please stop the form"
    assert (await sms.contact(PATIENT)).opted_out_at is None


async def test_a_queued_reply_is_withheld_if_the_patient_opts_out_before_it_goes(serve):
    sms = await serve(sms_send_interval_seconds=3600)  # one pass at start, then asleep unless woken
    await sms.settle(0.2)
    sms.channel.sender.wake = lambda: None  # keep the replies queued
    await sms.text(inbound(PATIENT, "hello"))
    await sms.text(inbound(PATIENT, "STOP"))
    await sms.channel.sender.run_once()

    assert [body for body in sms.bodies(PATIENT)] == [
        next(row.body for row in await sms.rows(SmsOutbound) if row.origin == "opt_out")
    ]
    withheld = [row for row in await sms.rows(SmsOutbound) if row.origin == "assistant"]
    assert [row.body for row in withheld] == [sms.intro, "echo: hello"]
    assert {(row.status, row.last_error) for row in withheld} == {(SmsOutboundStatus.suppressed, "opted_out")}


async def test_help_gives_the_clinics_name_phone_and_how_to_stop(sms):
    await sms.text(inbound(PATIENT, "help"))
    [text] = await sms.sent_to(PATIENT, 1)
    clinic = sms.channel.clinic
    assert clinic.name in text and clinic.phone in text and "STOP" in text
    assert sms.agent.received == []


async def test_a_picture_without_text_gets_i_can_only_read_text(sms):
    await sms.text(inbound(PATIENT, "", media=1))
    [text] = await sms.sent_to(PATIENT, 1)
    assert "I can only read text here" in text
    assert sms.agent.received == []


async def test_a_picture_with_text_is_answered_with_a_note_about_the_picture(sms):
    await sms.text(inbound(PATIENT, "what is this rash", media=2))
    texts = await sms.sent_to(PATIENT, 2)
    assert "not the picture" in texts[0]
    assert texts[1] == "echo: what is this rash"


async def test_a_number_over_its_rate_limit_gets_one_notice_and_is_not_read(serve):
    sms = await serve(sms_messages_per_minute=3)
    for i in range(6):
        await sms.text(inbound(PATIENT, f"message {i}"))
    await sms.settle(0.6)
    texts = sms.bodies(PATIENT)

    assert len(sms.agent.received) == 3
    assert sum("faster than I can answer" in text for text in texts) == 1
    assert len(texts) == 4


async def test_the_daily_cap_stops_automated_texts_with_one_notice(serve):
    sms = await serve(sms_daily_outbound_cap=3)  # the first-contact notice counts too
    for i in range(4):
        await sms.text(inbound(PATIENT, f"question {i}"))
    await sms.settle(0.6)
    texts = sms.bodies(PATIENT)

    assert texts[:2] == ["echo: question 0", "echo: question 1"]
    assert len(texts) == 3 and "today's limit" in texts[2]
    withheld = [row for row in await sms.rows(SmsOutbound) if row.status == SmsOutboundStatus.suppressed]
    assert {row.last_error for row in withheld} == {"daily_cap"}


async def test_a_conversation_staff_hold_gets_no_automated_reply_and_no_fallback(sms):
    from rasa.shared.core.events import ConversationPaused

    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 1)
    sender_id = sms.agent.received[0].sender_id
    tracker = await sms.agent.tracker_store.retrieve(sender_id)
    tracker.update(ConversationPaused())
    await sms.agent.tracker_store.save(tracker)

    await sms.text(inbound(PATIENT, "is anyone there?"))
    await sms.settle()
    assert sms.bodies(PATIENT) == ["echo: hello"]
    assert sms.agent.received[-1].text == "is anyone there?"


async def test_a_failure_in_the_assistant_still_answers_with_the_clinics_phone(sms):
    sms.agent.fail = True
    await sms.text(inbound(PATIENT, "hello"))
    [text] = await sms.sent_to(PATIENT, 1)
    assert sms.channel.clinic.phone in text


async def test_whatsapp_texts_are_answered_on_whatsapp(sms):
    patient = f"whatsapp:{PATIENT}"
    await sms.text(inbound(patient, "hello", to=f"whatsapp:{WHATSAPP_FROM}"))
    assert await sms.sent_to(patient, 1) == ["echo: hello"]
    assert sms.fake.sent[-1].sender == f"whatsapp:{WHATSAPP_FROM}"
    assert sms.agent.received[0].input_channel == "whatsapp"
    assert (await sms.contact(patient)).sender_id != getattr(await sms.contact(PATIENT), "sender_id", None)


async def test_the_channel_is_off_until_configured(serve):
    sms = await serve(twilio_auth_token="")
    status, _ = await sms.text(inbound(PATIENT, "hello"), signature="x")
    assert status == 503
    assert sms.agent.received == []


async def test_signed_delivery_callbacks_are_recorded_and_unsigned_ones_refused(sms):
    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 1)
    sent = sms.fake.sent[-1]

    assert await sms.fake.report_async(sent.sid, "sent") == 204
    assert await sms.fake.report_async(sent.sid, "delivered") == 204
    [row] = await sms.rows(SmsOutbound, SmsOutbound.twilio_sid == sent.sid)
    assert (row.body, row.delivery_status) == ("echo: hello", "delivered")

    status, _ = await sms.post(sent.status_callback, {"MessageSid": sent.sid, "MessageStatus": "failed"},
                               signature="forged")
    assert status == 403
    status, _ = await sms.post(sent.status_callback, {"MessageSid": sent.sid, "MessageStatus": "nonsense"})
    assert status == 400
    [row] = await sms.rows(SmsOutbound, SmsOutbound.twilio_sid == sent.sid)
    assert row.delivery_status == "delivered"


async def test_an_undelivered_text_is_audited_on_the_conversations_escalation(sms):
    from bot.core.store import repository as repo
    from bot.core.store.db import create_engine, session_factory
    from bot.core.store.models import Priority, Reason

    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 1)
    engine = create_engine(sms.db_url)
    async with session_factory(engine)() as session:
        async with session.begin():
            data = repo.EscalationInput(sender_id=sms.agent.received[0].sender_id, channel="sms",
                                        reason=Reason.emergency, priority=Priority.urgent, trigger={}, transcript=[])
            escalation_id = (await repo.upsert_escalation(session, data)).record.id
    await engine.dispose()

    assert await sms.fake.report_async(sms.fake.sent[-1].sid, "undelivered", "30005") == 204

    [event] = [e for e in await sms.rows(AuditEvent) if e.kind == AuditKind.sms_delivery_failed]
    assert event.escalation_id == escalation_id
    assert event.detail["error_code"] == "30005" and PATIENT not in str(event.detail)


async def test_the_first_text_from_a_new_number_starts_by_saying_what_the_assistant_is(sms):
    await sms.text(inbound(PATIENT, "help"))
    texts = await sms.sent_to(PATIENT, 1)
    everything = sms.fake.bodies(PATIENT)
    assert everything[0] == sms.intro and everything[1:] == texts
    assert "automated assistant" in sms.intro and "not a secure channel" in sms.intro

    await sms.text(inbound(PATIENT, "hello"))
    await sms.sent_to(PATIENT, 2)
    assert sms.fake.bodies(PATIENT).count(sms.intro) == 1  # once per number


async def test_no_extra_notice_when_the_assistants_own_opening_is_in_the_first_reply(sms):
    async def with_opening(message):
        await message.output_channel.send_response(
            message.sender_id, {"text": "I'm the clinic's automated assistant.", "utter_action": "utter_disclosure"}
        )
        await message.output_channel.send_response(message.sender_id, {"text": "echo"})

    sms.agent.handle_message = with_opening
    await sms.text(inbound(PATIENT, "hi"))
    texts = await sms.sent_to(PATIENT, 2)
    assert sms.fake.bodies(PATIENT) == texts == ["I'm the clinic's automated assistant.", "echo"]
