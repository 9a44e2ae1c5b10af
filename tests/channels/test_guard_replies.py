"""Replies the channel guard adds itself: after a failed action, and to messages in another language."""

from __future__ import annotations

import logging

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.channels.guard import guard
from bot.clinic import Clinic

CLINIC = Clinic(name="Test Physio", phone="0100 000 000", booking_url="https://book.example")


async def test_failed_action_adds_the_phone_number_even_when_other_replies_were_sent():
    async def rasa(message: UserMessage) -> None:
        try:
            raise ConnectionError("action server unreachable")
        except ConnectionError:
            logging.getLogger("rasa.core.processor").exception(
                "Encountered an exception while running action 'action_handle_contraindication'."
            )
        await message.output_channel.send_response(message.sender_id, {"text": "Would you like a physio to contact you?"})

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("I take warfarin", out, "s1"))
    texts = [m["text"] for m in out.messages]
    assert texts[0] == "Would you like a physio to contact you?"
    assert "0100 000 000" in texts[1]


async def test_a_later_turn_is_not_marked_failed():
    async def failing(message: UserMessage) -> None:
        logging.getLogger("rasa.core.processor").error("Encountered an exception while running action 'x'.")
        await message.output_channel.send_response(message.sender_id, {"text": "partial"})

    async def fine(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": "all good"})

    await guard(failing, CLINIC, 2000)(UserMessage("one", CollectingOutputChannel(), "s1"))
    out = CollectingOutputChannel()
    await guard(fine, CLINIC, 2000)(UserMessage("two", out, "s1"))
    assert [m["text"] for m in out.messages] == ["all good"]


async def test_message_in_another_language_gets_an_english_only_reply_with_phone_and_emergency_number():
    called = []

    async def rasa(message: UserMessage) -> None:
        called.append(message.text)

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("¿Duele la punción seca?", out, "s1"))
    assert called == []
    assert "only understand English" in out.messages[0]["text"]
    assert CLINIC.phone in out.messages[0]["text"] and CLINIC.emergency_number in out.messages[0]["text"]


def test_names_drug_names_and_short_messages_are_not_taken_for_another_language():
    from bot.channels.guard import looks_like_another_language

    for text in ["José María García Pérez", "xarelto eliquis warfarin", "tom@example.com", "dry needling cost", "😀😀"]:
        assert not looks_like_another_language(text), text
    assert looks_like_another_language("针灸和干针有什么区别")
