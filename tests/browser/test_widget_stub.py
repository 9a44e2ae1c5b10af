"""The widget's protocol handling and rendering, against a scripted Rasa (no processes).

Each test loads the widget on a page served by Playwright and answers its WebSocket with
:class:`conftest.FakeRasa`, so message shapes that the real bot rarely sends (links,
images, HTML, ``buttons``) and connection failures can be produced on demand.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

GREETING = [
    {"text": "Hello, I'm Test Physio's automated assistant."},
    {
        "text": "What would you like to know?",
        "quick_replies": [
            {"content_type": "text", "title": "What is it?", "payload": "/faq/what_is_dry_needling"},
            {"content_type": "text", "title": "Does it hurt?", "payload": "/faq/does_it_hurt"},
        ],
    },
]


def greeting_then(answers: dict):
    """A reply script: the greeting for /greet, then ``answers[message]`` (default nothing)."""
    return lambda message: GREETING if message == "/greet" else answers.get(message, [])


def test_new_session_sends_the_initial_payload_once(stub_chat, fake_rasa, page):
    fake_rasa.reply = greeting_then({})
    chat = stub_chat().open()
    expect(chat.bot.first).to_contain_text("automated assistant")
    page.keyboard.press("Escape")
    chat.open()
    page.reload()
    expect(chat.panel).to_be_visible()
    expect(chat.bot).to_have_count(2)
    assert [e["message"] for e in fake_rasa.events("user_uttered")] == ["/greet"]
    expect(chat.user).to_have_count(0)


def test_empty_initial_payload_sends_nothing(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    page.wait_for_timeout(300)
    assert fake_rasa.events("user_uttered") == []
    expect(chat.log).to_be_empty()


def test_custom_initial_payload_is_sent(stub_chat, fake_rasa, page):
    stub_chat(initial_payload="/get_started").open()
    fake_rasa.until(lambda: fake_rasa.events("user_uttered"))
    assert [e["message"] for e in fake_rasa.events("user_uttered")] == ["/get_started"]


def test_reconnect_reuses_the_confirmed_session_id(stub_chat, fake_rasa, page):
    chat = stub_chat().open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    page.reload()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    requests = fake_rasa.events("session_request")
    assert requests[0] == {"session_id": None}
    assert requests[1] == {"session_id": "session-1"}
    assert chat.stored()["sid"] == "session-1"


def test_user_message_is_emitted_with_the_session_id(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    chat.send("Does it hurt?")
    expect(chat.user).to_have_text(["Does it hurt?"])
    fake_rasa.until(lambda: fake_rasa.events("user_uttered"))
    assert fake_rasa.events("user_uttered") == [{"message": "Does it hurt?", "session_id": "session-1"}]


def test_server_ping_is_answered_with_pong(stub_chat, fake_rasa, page):
    stub_chat().open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    fake_rasa.sockets[-1].send("2")
    fake_rasa.until(lambda: "3" in fake_rasa.frames)


def test_messages_typed_offline_are_queued_and_sent_in_order_after_confirm(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    fake_rasa.confirm = False
    fake_rasa.sockets[-1].close()
    expect(chat.banner).to_contain_text("connection was lost")
    expect(page.locator(".cw-status")).to_contain_text("Offline")
    chat.send("first question")
    chat.send("second question")
    expect(page.locator(".cw-user .cw-meta")).to_have_text(["Waiting to send", "Waiting to send"])
    fake_rasa.until(lambda: len(fake_rasa.events("session_request")) == 2)  # reconnected, unconfirmed
    assert fake_rasa.events("session_request")[-1] == {"session_id": "session-1"}
    assert fake_rasa.events("user_uttered") == []
    fake_rasa.emit("session_confirm", "session-1")
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    expect(chat.banner).to_be_empty()
    expect(page.locator(".cw-user .cw-meta time")).to_have_count(2)
    fake_rasa.until(lambda: len(fake_rasa.events("user_uttered")) == 2)
    assert [e["message"] for e in fake_rasa.events("user_uttered")] == ["first question", "second question"]


def test_quick_reply_sends_its_payload_then_all_replies_disable(stub_chat, fake_rasa, page):
    fake_rasa.reply = greeting_then({"/faq/does_it_hurt": [{"text": "Most people feel a brief prick."}]})
    chat = stub_chat().open()
    chat.replies.filter(has_text="Does it hurt?").click()
    expect(chat.user).to_have_text(["Does it hurt?"])
    expect(chat.bot.last).to_have_text("Most people feel a brief prick.")
    fake_rasa.until(lambda: len(fake_rasa.events("user_uttered")) == 2)
    assert fake_rasa.events("user_uttered")[-1]["message"] == "/faq/does_it_hurt"
    expect(chat.replies).to_have_count(2)
    for i in range(2):
        expect(chat.replies.nth(i)).to_be_visible()
        expect(chat.replies.nth(i)).to_be_disabled()
    expect(chat.replies.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(chat.input).to_be_focused()
    page.reload()
    expect(chat.replies.nth(0)).to_be_disabled()


def test_typed_message_retires_open_quick_replies(stub_chat, fake_rasa, page):
    fake_rasa.reply = greeting_then({})
    chat = stub_chat().open()
    expect(chat.replies.first).to_be_enabled()
    chat.send("something else")
    expect(chat.replies.first).to_be_disabled()


def test_buttons_key_is_rendered_as_quick_replies(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    fake_rasa.emit("bot_uttered", {"text": "Pick one", "buttons": [{"title": "Yes", "payload": "/affirm"}]})
    expect(chat.replies).to_have_text(["Yes"])


def test_bot_links_are_http_only_and_open_safely_in_a_new_tab(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    fake_rasa.emit("bot_uttered", {"text": (
        "Read https://example.org/needling. Or see [our guide](https://example.org/guide), "
        "not [this](javascript:alert(1)) or javascript:alert(2)."
    )})
    links = chat.log.locator("a")
    expect(links).to_have_count(2)
    expect(links.nth(0)).to_have_attribute("href", "https://example.org/needling")
    expect(links.nth(1)).to_have_attribute("href", "https://example.org/guide")
    expect(links.nth(1)).to_contain_text("our guide")
    for i in range(2):
        expect(links.nth(i)).to_have_attribute("target", "_blank")
        expect(links.nth(i)).to_have_attribute("rel", "noopener noreferrer")
    expect(chat.bot.last).to_contain_text("not [this](javascript:alert(1)) or javascript:alert(2).")


def test_html_from_the_bot_is_shown_as_text(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    html = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>'
    fake_rasa.emit("bot_uttered", {"text": html})
    expect(chat.bot.last).to_have_text(html)
    expect(chat.log.locator("img, script, b")).to_have_count(0)
    assert page.evaluate("() => window.__pwned") is None


def test_image_attachment_is_shown_only_for_http_urls(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    expect(page.locator(".cw")).to_have_attribute("data-state", "online")
    fake_rasa.emit("bot_uttered", {"attachment": {"type": "image", "payload": {"src": "javascript:alert(1)"}}})
    fake_rasa.emit("bot_uttered", {"attachment": {"type": "image", "payload": {"src": "https://example.org/a.png"}}})
    images = chat.log.locator("img")
    expect(images).to_have_count(1)
    expect(images).to_have_attribute("src", "https://example.org/a.png")
    expect(images).to_have_attribute("alt", re.compile("assistant"))


def test_typing_indicator_shows_until_the_reply_arrives(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    chat.send("Does it hurt?")
    typing = page.locator(".cw-typing")
    expect(typing).to_be_visible()
    fake_rasa.emit("bot_uttered", {"text": "A little."})
    expect(typing).to_be_hidden()


def test_conversation_is_kept_in_session_storage_by_default(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    chat.send("hello")
    expect(chat.user).to_have_count(1)
    assert chat.stored("sessionStorage")["msgs"][0]["text"] == "hello"
    assert chat.stored("localStorage") is None


def test_local_storage_is_opt_in(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="", storage="local").open()
    chat.send("hello")
    expect(chat.user).to_have_count(1)
    assert chat.stored("localStorage")["msgs"][0]["text"] == "hello"
    assert chat.stored("sessionStorage") is None


def test_start_over_clears_the_transcript_and_requests_a_new_session(stub_chat, fake_rasa, page):
    fake_rasa.reply = greeting_then({})
    chat = stub_chat().open()
    chat.send("hello")
    expect(chat.user).to_have_count(1)
    page.locator(".cw-restart").click()
    expect(chat.user).to_have_count(0)
    expect(chat.bot).to_have_count(2)
    fake_rasa.until(lambda: len(fake_rasa.events("user_uttered")) == 3)
    assert fake_rasa.events("session_request")[-1] == {"session_id": None}
    assert chat.stored()["sid"] == "session-2"
    assert [e["session_id"] for e in fake_rasa.events("user_uttered")] == ["session-1", "session-1", "session-2"]


def test_strings_come_from_the_file_named_by_data_lang(stub_chat, page):
    chat = stub_chat(lang="de")
    expect(chat.launcher).to_have_text("Fragen? Schreiben Sie uns")
    expect(page.locator(".cw")).to_have_attribute("lang", "de")
    chat.open()
    expect(page.get_by_label("Ihre Frage")).to_be_visible()


def test_unknown_language_falls_back_to_english(stub_chat):
    chat = stub_chat(lang="xx")
    expect(chat.launcher).to_have_text("Questions? Chat with us")


def test_configured_colours_are_applied(stub_chat):
    chat = stub_chat(color="#123456", color_text="#fefefe")
    expect(chat.launcher).to_have_css("background-color", "rgb(18, 52, 86)")
    expect(chat.launcher).to_have_css("color", "rgb(254, 254, 254)")


def test_reduced_motion_turns_animations_off(stub_chat, page):
    page.emulate_media(reduced_motion="reduce")
    chat = stub_chat(initial_payload="").open()
    chat.send("hello")
    dot = page.locator(".cw-typing i").first
    expect(dot).to_be_visible()
    expect(dot).to_have_css("animation-name", "none")
    expect(chat.panel).to_have_css("animation-name", "none")


def test_long_reply_is_shown_from_its_start(stub_chat, fake_rasa, page):
    chat = stub_chat(initial_payload="").open()
    chat.send("Tell me everything")
    fake_rasa.emit("bot_uttered", {"text": "First line of a long answer.\n" + "More detail.\n" * 60})
    expect(chat.bot.last).to_contain_text("First line")
    page.wait_for_function(
        """() => {
            const log = document.querySelector('.cw-log');
            const top = log.lastElementChild.getBoundingClientRect().top - log.getBoundingClientRect().top;
            return top >= 0 && top < 80;
        }"""
    )
