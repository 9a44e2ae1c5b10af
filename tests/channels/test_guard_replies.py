"""Replies the channel guard adds itself: after a failed action, and to messages in another language."""

from __future__ import annotations

import logging

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.assistant.channels.guard import guard
from bot.core.clinic import Clinic

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


async def test_message_in_another_language_gets_the_english_only_reply_in_that_language_with_the_numbers():
    called = []

    async def rasa(message: UserMessage) -> None:
        called.append(message.text)

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("¿Duele la punción seca?", out, "s1"))
    assert called == []
    [reply] = [m["text"] for m in out.messages]
    assert "solo responde en inglés" in reply
    assert CLINIC.name in reply and CLINIC.phone in reply and CLINIC.emergency_number in reply


async def test_a_language_without_a_catalogue_gets_the_english_only_reply_in_english():
    called = []

    async def rasa(message: UserMessage) -> None:
        called.append(message.text)

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("针灸和干针有什么区别", out, "s1"))
    assert called == []
    assert "only understand English" in out.messages[0]["text"]
    assert CLINIC.phone in out.messages[0]["text"] and CLINIC.emergency_number in out.messages[0]["text"]


async def test_a_red_flag_in_another_language_gets_urgent_guidance_in_it_first_and_still_reaches_rasa():
    called = []

    async def rasa(message: UserMessage) -> None:
        called.append(message.text)
        await message.output_channel.send_response(message.sender_id, {"text": "rasa's answer"})

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("nie moge oddychac od zabiegu", out, "s1"))
    assert called == ["nie moge oddychac od zabiegu"]
    urgent, answer = [m["text"] for m in out.messages]
    assert "natychmiast zadzwonić" in urgent and "A&E" in urgent
    assert CLINIC.emergency_number in urgent and CLINIC.phone in urgent
    assert answer == "rasa's answer"


async def test_a_red_flag_about_someone_else_speaks_to_the_writer_about_them():
    async def rasa(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": "rasa's answer"})

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("mijn man kan niet ademen na zijn behandeling", out, "s1"))
    assert "voor deze persoon" in out.messages[0]["text"]


async def test_a_negated_red_flag_in_another_language_gets_the_english_only_reply_not_the_urgent_one():
    called = []

    async def rasa(message: UserMessage) -> None:
        called.append(message.text)

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("ik heb geen pijn op de borst, mag ik morgen komen?", out, "s1"))
    assert called == []
    [reply] = [m["text"] for m in out.messages]
    assert "alleen in het Engels" in reply


async def test_when_rasa_fails_after_urgent_guidance_the_fallback_is_still_sent():
    async def rasa(message: UserMessage) -> None:
        raise ConnectionError("model not loaded")

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("me falta el aire desde la sesión", out, "s1"))
    urgent, fallback = [m["text"] for m in out.messages]
    assert "Llame ahora" in urgent
    assert "technical problem" in fallback


async def test_while_staff_hold_the_chat_another_language_reaches_rasa_and_a_red_flag_still_gets_urgent_guidance():
    called = []

    async def rasa(message: UserMessage) -> None:
        called.append(message.text)

    async def held(sender_id: str):
        return {}

    out = CollectingOutputChannel()
    clinic = Clinic(name="Test Physio", phone="0100 000 000", booking_url="https://x.example", emergency_number="999")
    handler = guard(rasa, clinic, 2000, held=held)
    await handler(UserMessage("Hola, ¿cuándo podría venir mañana por la tarde?", out, "s1"))
    assert out.messages == []
    await handler(UserMessage("mi marido no puede respirar", out, "s1"))
    assert called == ["Hola, ¿cuándo podría venir mañana por la tarde?", "mi marido no puede respirar"]
    assert [m["text"] for m in out.messages] == [
        "Esto parece urgente. Llame ahora al 999 (el número de emergencias del Reino Unido) por esa persona, "
        "o llévela a urgencias del hospital más cercano («A&E»). Quédese con ella. Después llame a la clínica "
        "al 0100 000 000."
    ]


def test_names_drug_names_and_short_messages_are_not_taken_for_another_language():
    from bot.core.safety.languages import identify

    for text in ["José María García Pérez", "xarelto eliquis warfarin", "tom@example.com", "dry needling cost", "😀😀"]:
        assert identify(text) == "en", text
    assert identify("针灸和干针有什么区别") == "zh"


def _catalogue_cases(key: str) -> list[tuple[str, str]]:
    import yaml

    from bot.core.safety.languages import LANGUAGES_DIR

    cases = []
    for path in sorted(LANGUAGES_DIR.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if key == "examples":
            cases += [(path.stem, t) for entry in (data.get("classes") or {}).values() for t in entry["examples"]]
        else:
            cases += [(path.stem, t) for t in data.get(key) or ()]
    return cases


@pytest.mark.parametrize("code,text", _catalogue_cases("examples"))
async def test_every_catalogue_red_flag_gets_urgent_guidance_first_and_reaches_rasa(code, text):
    called = []

    async def rasa(message: UserMessage) -> None:
        called.append(message.text)
        await message.output_channel.send_response(message.sender_id, {"text": "rasa's answer"})

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage(text, out, "s1"))
    assert called == [text]
    first = out.messages[0]["text"]
    assert CLINIC.emergency_number in first and "A&E" in first and CLINIC.phone in first


@pytest.mark.parametrize("code,text", _catalogue_cases("ordinary"))
async def test_an_ordinary_message_in_another_language_gets_no_urgent_guidance(code, text):
    async def rasa(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": "rasa's answer"})

    out = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage(text, out, "s1"))
    assert all("A&E" not in m["text"] for m in out.messages)
