"""Numbered choices for buttons, the patient's answers to them, and SMS keywords."""

from __future__ import annotations

import pytest

from bot.assistant.messaging.choices import Choice, choices_from_buttons, choices_line, selected
from bot.assistant.messaging.keywords import HELP, OPT_IN, OPT_OUT, keyword_of
from bot.assistant.messaging.replies import render_turn
from bot.assistant.messaging.texts import load_texts
from bot.core.messaging.addresses import parse_address

BUTTONS = [
    {"title": "Yes, please", "payload": "/affirm"},
    {"title": "No, thanks", "payload": "/deny"},
    {"title": "What is it?", "payload": "What is dry needling?"},
]
CHOICES = choices_from_buttons(BUTTONS)


def test_buttons_become_a_numbered_line_without_payloads():
    line = choices_line(CHOICES)
    assert line == 'Reply 1 for "Yes, please", 2 for "No, thanks" or 3 for "What is it?".'
    assert "/affirm" not in line


def test_one_button_reads_naturally():
    assert choices_line(choices_from_buttons([{"title": "Talk to a person", "payload": "/request_human"}])) == (
        'Reply 1 for "Talk to a person".'
    )


@pytest.mark.parametrize("reply, payload", [
    ("1", "/affirm"), (" 2 ", "/deny"), ("#3", "What is dry needling?"), ("option 2", "/deny"), ("1.", "/affirm"),
    ("yes please", "/affirm"), ("No, thanks!", "/deny"), ("what is it", "What is dry needling?"),
    ("What is dry needling", "What is dry needling?"),
])
def test_a_number_or_the_words_of_a_choice_select_it(reply, payload):
    assert selected(reply, CHOICES).payload == payload


@pytest.mark.parametrize("reply", ["4", "0", "yes", "12 sessions", "deny", "/affirm", "", "07700 900123"])
def test_anything_else_is_not_an_answer_to_the_choices(reply):
    assert selected(reply, CHOICES) is None


def test_malformed_buttons_are_skipped_and_stored_choices_round_trip():
    choices = choices_from_buttons([None, {"title": ""}, {"title": "Email", "payload": "email"}])
    assert choices == [Choice(1, "Email", "email")]
    assert Choice.from_dict(choices[0].to_dict()) == choices[0]
    assert Choice.from_dict({"number": "1"}) is None


def test_a_turn_keeps_the_last_choices_offered_and_renders_images_as_links():
    turn = render_turn(
        [{"text": "Pick one", "buttons": BUTTONS}, {"text": "A picture", "image": "https://x.example/a.png"},
         {"custom": {"widget": "only"}}],
        320,
    )
    assert turn.parts[0].startswith("Pick one Reply 1 for")
    assert turn.parts[1] == "A picture https://x.example/a.png"
    assert len(turn.parts) == 2
    assert [choice.payload for choice in turn.choices] == ["/affirm", "/deny", "What is dry needling?"]


KEYWORDS = load_texts().keywords


@pytest.mark.parametrize("text, kind", [
    ("STOP", OPT_OUT), ("stop", OPT_OUT), (" Stop. ", OPT_OUT), ("UNSUBSCRIBE", OPT_OUT), ("cancel", OPT_OUT),
    ("END", OPT_OUT), ("quit!", OPT_OUT), ("START", OPT_IN), ("unstop", OPT_IN), ("HELP", HELP), ("help?", HELP),
])
def test_keywords_are_whole_messages_in_any_case(text, kind):
    assert keyword_of(text, KEYWORDS) == kind


@pytest.mark.parametrize("text", ["stop the form please", "can you help me", "start again", "", "stopping", "yes"])
def test_keywords_inside_sentences_are_ordinary_messages(text):
    assert keyword_of(text, KEYWORDS) is None


def test_the_channel_texts_fill_the_clinic_facts():
    from bot.core.clinic import load_clinic
    from bot.core.settings import REPO_ROOT

    clinic = load_clinic(REPO_ROOT / "clinic.yml")
    help_text = load_texts().render("help", clinic)
    assert clinic.name in help_text and clinic.phone in help_text and "STOP" in help_text
    assert "{" not in help_text


@pytest.mark.parametrize("raw, kind, value", [
    ("+447700900123", "sms", "+447700900123"),
    ("whatsapp:+447700900123", "whatsapp", "whatsapp:+447700900123"),
    ("447700900123", "sms", "+447700900123"),
])
def test_addresses_are_parsed_with_their_channel(raw, kind, value):
    address = parse_address(raw)
    assert (address.kind, address.value, address.ending) == (kind, value, "0123")


@pytest.mark.parametrize("raw", [None, "", "hello", "+0123", "whatsapp:", "+44" + "1" * 20, 12345])
def test_anything_but_a_phone_number_is_no_address(raw):
    assert parse_address(raw) is None
