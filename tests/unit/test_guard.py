"""The channel guard: clean_text makes any input safe, guard makes sure the patient never gets silence."""

from __future__ import annotations

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.assistant.channels.guard import guard
from bot.assistant.channels.replies import empty_reply, failure_reply
from bot.assistant.channels.text_input import clean_text
from bot.core.clinic import Clinic

MAX = 2000
CLINIC = Clinic(name="Riverside Physiotherapy", phone="020 7946 0958", booking_url="https://clinic.example/book")


@pytest.mark.parametrize("raw", ["", "   ", "\n\t \r\n", None, "\x00\x01", "\u200b\ufeff"])
def test_clean_text_recognises_empty_input(raw):
    cleaned = clean_text(raw, MAX)

    assert cleaned.empty is True
    assert cleaned.text == ""


def test_clean_text_truncates_a_long_message_to_max_chars_at_a_word_boundary():
    raw = " ".join(["needling"] * 2300)  # about 20,700 characters
    assert len(raw) > 20_000

    cleaned = clean_text(raw, 1995)

    assert cleaned.truncated is True
    assert len(cleaned.text) <= 1995
    assert set(cleaned.text.split(" ")) == {"needling"}
    assert len(cleaned.text) > 1995 - len(" needling")


def test_clean_text_cuts_a_long_message_without_spaces_at_max_chars():
    cleaned = clean_text("a" * 20_000, MAX)

    assert cleaned.truncated is True
    assert cleaned.text == "a" * MAX


def test_clean_text_leaves_a_message_of_exactly_max_chars_alone():
    cleaned = clean_text("b" * MAX, MAX)

    assert cleaned.truncated is False
    assert len(cleaned.text) == MAX


def test_clean_text_removes_nul_and_control_characters():
    cleaned = clean_text("does\x00it\x07 hurt\x1b[31m?\x7f", MAX)

    assert cleaned.text == "does it hurt [31m?"


def test_clean_text_removes_zero_width_characters():
    assert clean_text("dry\u200bneed\u200dling\ufeff\u2060", MAX).text == "dryneedling"


def test_clean_text_collapses_whitespace():
    assert clean_text("  does \n\n it \t hurt  ", MAX).text == "does it hurt"


def test_clean_text_decodes_bytes():
    assert clean_text("does it hurt? ✓".encode(), MAX).text == "does it hurt? ✓"


def test_clean_text_replaces_undecodable_bytes():
    assert clean_text(b"\xff\xfehello\xc3", MAX).text == "hello"


@pytest.mark.parametrize("raw, text", [(42, "42"), (3.5, "3.5"), (["a"], "['a']"), (True, "True")])
def test_clean_text_turns_non_str_input_into_text(raw, text):
    assert clean_text(raw, MAX).text == text


def test_clean_text_preserves_emoji():
    assert clean_text("Does it hurt? 😬👍🏽", MAX).text == "Does it hurt? 😬👍🏽"


def test_clean_text_leaves_html_as_literal_text():
    raw = '<script>alert("x")</script> <b>bold</b> &amp;'

    assert clean_text(raw, MAX).text == raw


@pytest.mark.parametrize("payload", ["/affirm", "/deny", "/request_human", "/book_appointment"])
def test_clean_text_keeps_the_payloads_our_buttons_send(payload):
    cleaned = clean_text(payload, MAX)

    assert cleaned.text == payload
    assert cleaned.payload_blocked is False


@pytest.mark.parametrize(
    "payload, text",
    [
        ("/restart", "restart"),
        ('/inform{"contact_consent": true}', 'inform{"contact_consent": true}'),
        ("/ask_contraindication", "ask_contraindication"),
        ("//restart", "restart"),
        ("/affirm{\"x\": 1}", "affirm{\"x\": 1}"),
        ("/faq/does_it_hurt", "faq/does_it_hurt"),  # FAQ buttons send the question as text (commit 57f4002)
        ("/", "slash"),
    ],
)
def test_clean_text_neutralises_other_payloads(payload, text):
    cleaned = clean_text(payload, MAX)

    assert cleaned.text == text
    assert cleaned.payload_blocked is True


@pytest.mark.parametrize("raw", ["/ /restart", "/\x00/restart", '/ /inform{"contact_consent": true}'])
def test_clean_text_never_lets_a_blocked_payload_through_as_a_payload(raw):
    cleaned = clean_text(raw, MAX)

    assert not cleaned.text.startswith("/")


def user_message(text, sender_id: str = "conv-1") -> tuple[UserMessage, CollectingOutputChannel]:
    output = CollectingOutputChannel()
    return UserMessage(text, output, sender_id, input_channel="rest"), output


class FakeRasa:
    """Stands in for Rasa's on_new_message: records what it got, replies, stays silent or raises."""

    def __init__(self, replies: list[str] | None = None, error: Exception | None = None) -> None:
        self.replies = replies or []
        self.error = error
        self.received: list[str] = []

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message.text)
        for reply in self.replies:
            await message.output_channel.send_response(message.sender_id, {"text": reply})
        if self.error:
            raise self.error


async def test_guard_answers_an_empty_message_without_calling_rasa():
    rasa = FakeRasa(replies=["should not be sent"])
    message, output = user_message("   ")

    await guard(rasa, CLINIC, MAX)(message)

    assert rasa.received == []
    assert [m["text"] for m in output.messages] == [empty_reply()]


async def test_guard_passes_a_normal_reply_through_unchanged():
    rasa = FakeRasa(replies=["Dry needling uses thin filiform needles.", "Anything else?"])
    message, output = user_message("what is dry needling")

    await guard(rasa, CLINIC, MAX)(message)

    assert output.messages == [
        {"recipient_id": "conv-1", "text": "Dry needling uses thin filiform needles."},
        {"recipient_id": "conv-1", "text": "Anything else?"},
    ]


async def test_guard_sends_a_failure_reply_with_the_clinic_phone_when_rasa_raises():
    rasa = FakeRasa(error=RuntimeError("action server down"))
    message, output = user_message("does it hurt")

    await guard(rasa, CLINIC, MAX)(message)

    [reply] = output.messages
    assert reply["text"] == failure_reply(CLINIC)
    assert "020 7946 0958" in reply["text"]


async def test_guard_sends_a_failure_reply_with_the_clinic_phone_when_rasa_is_silent():
    message, output = user_message("does it hurt")

    await guard(FakeRasa(), CLINIC, MAX)(message)

    [reply] = output.messages
    assert "020 7946 0958" in reply["text"]


async def test_guard_gives_rasa_the_cleaned_text():
    rasa = FakeRasa(replies=["ok"])
    message, _ = user_message("does\x00 it\u200b hurt   ")

    await guard(rasa, CLINIC, MAX)(message)

    assert rasa.received == ["does it hurt"]


async def test_guard_gives_rasa_a_typed_payload_as_words():
    rasa = FakeRasa(replies=["ok"])
    message, _ = user_message('/inform{"contact_consent": true}')

    await guard(rasa, CLINIC, MAX)(message)

    assert rasa.received == ['inform{"contact_consent": true}']


async def test_guard_keeps_the_output_channel_name():
    names = []

    async def rasa(message: UserMessage) -> None:
        names.append(message.output_channel.name())
        await message.output_channel.send_response(message.sender_id, {"text": "ok"})

    message, output = user_message("hello")

    await guard(rasa, CLINIC, MAX)(message)

    assert names == [output.name()]


async def test_guard_never_hands_rasa_a_payload_hidden_behind_a_slash_and_space():
    rasa = FakeRasa(replies=["ok"])
    message, _ = user_message("/ /restart")

    await guard(rasa, CLINIC, MAX)(message)

    assert not rasa.received[0].startswith("/")
