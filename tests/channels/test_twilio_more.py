"""By text message an FAQ answer comes as its short version; MORE brings the full one, in marked parts."""

from __future__ import annotations

import re

import pytest

from bot.core.knowledge import catalog
from tests.support.fake_twilio import inbound
from tests.support.sms_channel import MENU, start_sms_server, stop_sms_server

PATIENT = "+447700900456"
MARKER = re.compile(r"^\(\d+/(\d+)\) ")
KB = catalog.load()


@pytest.fixture
async def sms(db_url, fake_twilio):
    fake_twilio.clear()
    server_sms, server = await start_sms_server(db_url, fake_twilio)
    values = server_sms.channel.clinic.template_values()

    def faq(topic: str) -> dict:
        answer = KB.faq[topic]
        return {"text": answer.text.format_map(values), "utter_action": answer.name,
                "metadata": {"kb": {"version": answer.version, "reviewed": str(answer.reviewed)}}}

    def script(text: str) -> list[dict]:
        if text == "is it safe":
            return [faq("safety")]
        if text == "safe with a menu":
            return [faq("safety"), MENU]
        return [{"text": f"echo: {text}"}]

    server_sms.agent.script = script
    server_sms.full = lambda topic: faq(topic)["text"]
    server_sms.short = lambda topic: KB.faq[topic].short.format_map(values)
    yield server_sms
    await stop_sms_server(server_sms, server)


def joined(parts: list[str]) -> str:
    return " ".join(MARKER.sub("", part) for part in parts)


async def full_answer(sms, already: int) -> list[str]:
    """The parts of the full answer that follow ``already`` texts, once all of them arrived."""
    first = (await sms.sent_to(PATIENT, already + 1))[already]
    total = int(MARKER.match(first).group(1))
    return (await sms.sent_to(PATIENT, already + total))[already:]


async def test_an_faq_answer_is_one_text_then_more_sends_the_full_answer_without_asking_the_assistant(sms):
    await sms.text(inbound(PATIENT, "is it safe"))
    [short] = await sms.sent_to(PATIENT, 1)
    assert short == f"{sms.short('safety')} Reply MORE for the full answer."
    assert len(short) <= 320

    await sms.text(inbound(PATIENT, "MORE"))
    parts = await full_answer(sms, 1)
    assert len(parts) >= 2 and all(MARKER.match(part) and len(part) <= 320 for part in parts)
    assert joined(parts) == sms.full("safety")
    assert [message.text for message in sms.agent.received] == ["is it safe"]  # MORE never reached the assistant


@pytest.mark.parametrize("asking", ["more please", "Tell me more."])
async def test_more_in_other_words_works_too(sms, asking):
    await sms.text(inbound(PATIENT, "is it safe"))
    await sms.sent_to(PATIENT, 1)
    await sms.text(inbound(PATIENT, asking))
    assert joined(await full_answer(sms, 1)) == sms.full("safety")


async def test_more_is_answered_once_and_is_an_ordinary_message_when_no_short_answer_waits(sms):
    await sms.text(inbound(PATIENT, "more"))
    assert await sms.sent_to(PATIENT, 1) == ["echo: more"]  # nothing to expand: the assistant reads it

    await sms.text(inbound(PATIENT, "is it safe"))
    await sms.text(inbound(PATIENT, "more"))
    before = 2 + len(await full_answer(sms, 2))
    await sms.text(inbound(PATIENT, "more"))
    bodies = await sms.sent_to(PATIENT, before + 1)
    assert bodies[-1] == "echo: more"  # the offer closed with the full answer


async def test_a_later_question_makes_more_stale(sms):
    await sms.text(inbound(PATIENT, "is it safe"))
    await sms.text(inbound(PATIENT, "something else"))
    await sms.text(inbound(PATIENT, "more"))
    assert (await sms.sent_to(PATIENT, 3))[-1] == "echo: more"


async def test_numbered_choices_of_the_same_turn_still_work_after_more(sms):
    await sms.text(inbound(PATIENT, "safe with a menu"))
    first = await sms.sent_to(PATIENT, 2)
    assert first[0].endswith("Reply MORE for the full answer.") and 'Reply 1 for "What is it?"' in first[1]
    await sms.text(inbound(PATIENT, "MORE"))
    count = 2 + len(await full_answer(sms, 2))
    await sms.text(inbound(PATIENT, "1"))
    await sms.sent_to(PATIENT, count + 1)
    assert sms.agent.received[-1].text == "What is dry needling?"


async def test_the_full_answer_counts_against_the_daily_cap(serve_capped):
    sms = serve_capped
    await sms.text(inbound(PATIENT, "is it safe"))
    await sms.sent_to(PATIENT, 1)
    await sms.text(inbound(PATIENT, "more"))
    bodies = await sms.sent_to(PATIENT, 2)
    assert len(bodies) == 2 and "today's limit" in bodies[1]


@pytest.fixture
async def serve_capped(db_url, fake_twilio):
    fake_twilio.clear()
    server_sms, server = await start_sms_server(db_url, fake_twilio, sms_daily_outbound_cap=2)
    answer = KB.faq["safety"]
    values = server_sms.channel.clinic.template_values()
    server_sms.agent.script = lambda text: [{"text": answer.text.format_map(values), "utter_action": answer.name}]
    yield server_sms
    await stop_sms_server(server_sms, server)
