"""The widget when clinic staff take the chat over, against a scripted Rasa (no processes).

Staff lines arrive as standard ``bot_uttered`` events with ``metadata.staff`` (what the
staff bridge emits): the widget names the person, shows their messages apart from the
assistant's (label, outline, screen-reader text: not colour alone), says in its header
who is in the chat, and says when the assistant is back.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

JOINED = {"text": "Jane Doe from Test Physio has joined the chat.", "metadata": {"staff": {"name": "Jane Doe", "event": "joined"}}}
MESSAGE = {"text": "Hi, I'm Jane. How can I help?", "metadata": {"staff": {"name": "Jane Doe", "event": "message"}}}
LEFT = {"text": "Jane Doe has left the chat, and the automated assistant is back.",
        "metadata": {"staff": {"name": "Jane Doe", "event": "left"}}}


def online(stub_chat, page):
    chat = stub_chat(initial_payload="").open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    return chat


def test_a_staff_member_joining_is_announced_in_the_log_and_the_header(stub_chat, fake_rasa, page):
    chat = online(stub_chat, page)

    fake_rasa.emit("bot_uttered", JOINED)

    expect(page.locator(".cw-log .cw-note .cw-bubble")).to_have_text(JOINED["text"])
    expect(page.locator(".cw-status")).to_contain_text("Jane Doe, clinic team")
    expect(chat.bot).to_have_count(0)


def test_staff_messages_are_named_and_apart_from_the_assistants(stub_chat, fake_rasa, page):
    online(stub_chat, page)
    fake_rasa.emit("bot_uttered", {"text": "I'm the assistant."})
    fake_rasa.emit("bot_uttered", JOINED)
    fake_rasa.emit("bot_uttered", MESSAGE)

    staff = page.locator(".cw-log .cw-staff")
    expect(staff).to_have_count(1)
    expect(staff.locator(".cw-who")).to_have_text("Jane Doe · clinic team")
    expect(staff.locator(".cw-sr")).to_have_text("Jane Doe from the clinic team said:")
    expect(staff.locator(".cw-bubble")).to_have_text(MESSAGE["text"])
    expect(page.locator(".cw-log .cw-bot .cw-sr")).to_have_text(["Assistant said:"])
    assistant = page.locator(".cw-log .cw-bot .cw-bubble").evaluate("b => getComputedStyle(b).borderTopWidth")
    person = staff.locator(".cw-bubble").evaluate("b => getComputedStyle(b).borderTopWidth")
    assert assistant != person


def test_no_typing_dots_while_a_person_has_the_chat(stub_chat, fake_rasa, page):
    chat = online(stub_chat, page)
    fake_rasa.emit("bot_uttered", JOINED)
    expect(page.locator(".cw-note")).to_have_count(1)

    chat.send("Thank you, I have a question")

    fake_rasa.until(lambda: fake_rasa.events("user_uttered"))
    expect(page.locator(".cw-typing")).to_be_hidden()


def test_hand_back_says_the_assistant_is_back(stub_chat, fake_rasa, page):
    chat = online(stub_chat, page)
    fake_rasa.emit("bot_uttered", JOINED)
    fake_rasa.emit("bot_uttered", LEFT)

    expect(page.locator(".cw-log .cw-note .cw-bubble").last).to_have_text(LEFT["text"])
    expect(page.locator(".cw-status")).to_have_text("Automated assistant · Online")
    chat.send("does it hurt?")
    expect(page.locator(".cw-typing")).to_be_visible()


def test_the_person_in_the_chat_is_remembered_across_a_reload(stub_chat, fake_rasa, page):
    online(stub_chat, page)
    fake_rasa.emit("bot_uttered", JOINED)
    fake_rasa.emit("bot_uttered", MESSAGE)
    expect(page.locator(".cw-staff")).to_have_count(1)

    page.reload()

    expect(page.locator(".cw-staff .cw-who")).to_have_text("Jane Doe · clinic team")
    expect(page.locator(".cw-status")).to_contain_text("Jane Doe, clinic team")


def test_markup_in_a_staff_name_or_message_stays_text(stub_chat, fake_rasa, page):
    online(stub_chat, page)
    evil = "<img src=x onerror=\"window.pwned=1\">"
    fake_rasa.emit("bot_uttered", {"text": evil, "metadata": {"staff": {"name": evil, "event": "message"}}})

    expect(page.locator(".cw-staff .cw-bubble")).to_have_text(evil)
    assert page.locator(".cw-log img").count() == 0
    assert page.evaluate("() => window.pwned") is None


def test_unknown_staff_events_are_shown_as_ordinary_messages(stub_chat, fake_rasa, page):
    chat = online(stub_chat, page)

    fake_rasa.emit("bot_uttered", {"text": "hello", "metadata": {"staff": {"name": "X", "event": "reboot"}}})

    expect(chat.bot).to_have_text(["hello"])
    expect(page.locator(".cw-status")).to_have_text("Automated assistant · Online")


def test_a_takeover_has_no_accessibility_violations(stub_chat, fake_rasa, page):
    chat = online(stub_chat, page)
    fake_rasa.emit("bot_uttered", {"text": "I'm the assistant."})
    fake_rasa.emit("bot_uttered", JOINED)
    fake_rasa.emit("bot_uttered", MESSAGE)
    expect(page.locator(".cw-staff")).to_have_count(1)

    assert chat.axe_violations() == []
