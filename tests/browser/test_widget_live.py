"""The chat widget on the demo clinic page, talking to the real Rasa server.

These need the ``live_stack`` fixture (Rasa, action server and web app on loopback
ports). The conversation tests double as the regression test for Rasa 3.6's
un-awaited ``sio.enter_room`` (python-socketio >= 5.10): with it, no bot message
reaches the browser at all.
"""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PHONE = {"width": 375, "height": 667}
SLOW = 120_000  # ms: a restarted Rasa server loads its model before it answers


def answers(chat):
    """Bubbles of the assistant's messages after the patient's latest message."""
    return chat.page.locator(
        "xpath=//div[contains(concat(' ', @class, ' '), ' cw-user ')][last()]"
        "/following-sibling::div[contains(concat(' ', @class, ' '), ' cw-bot ')]"
        "/div[contains(concat(' ', @class, ' '), ' cw-bubble ')]"
    )


def greeted(chat):
    """Open the panel and wait for the bot's greeting and its quick replies."""
    chat.open()
    expect(chat.bot.first).to_contain_text("automated assistant")
    expect(chat.replies.first).to_be_enabled()
    return chat


def ask(chat, text: str):
    """Send ``text`` and wait for the first answer to it; return the answers locator."""
    chat.send(text)
    expect(chat.user.last).to_have_text(text)
    reply = answers(chat)
    expect(reply.first).to_be_visible()
    return reply


def test_greeting_discloses_the_automated_assistant(demo_chat):
    greeted(demo_chat)
    expect(demo_chat.user).to_have_count(0)
    expect(demo_chat.page.locator(".cw-status")).to_contain_text("Automated assistant")


def test_question_gets_an_answer_bubble(demo_chat):
    reply = ask(greeted(demo_chat), "does it hurt?")
    expect(reply.first).to_contain_text(re.compile(r"pain|needle|twitch|ache", re.IGNORECASE))
    expect(demo_chat.page.locator(".cw-user .cw-meta time").last).to_have_text(re.compile(r"^\d\d:\d\d$"))


def test_quick_reply_button_gets_an_answer_and_stays_visible_disabled(demo_chat):
    chat = greeted(demo_chat)
    group = chat.page.locator(".cw-replies").first
    count = group.locator(".cw-reply").count()
    group.get_by_role("button", name="Does it hurt?").click()
    expect(chat.user.last).to_have_text("Does it hurt?")
    expect(answers(chat).first).to_contain_text(re.compile(r"pain|needle|twitch|ache", re.IGNORECASE))
    expect(group.locator(".cw-reply")).to_have_count(count)
    for i in range(count):
        expect(group.locator(".cw-reply").nth(i)).to_be_disabled()
    expect(group.get_by_role("button", name="Does it hurt?")).to_have_attribute("aria-pressed", "true")


def test_escalation_question_mentions_a_physiotherapist(demo_chat):
    reply = ask(greeted(demo_chat), "I'm pregnant, can I have dry needling?")
    expect(reply.filter(has_text=re.compile("physiotherapist", re.IGNORECASE)).first).to_be_visible()


def test_page_button_with_data_chat_open_opens_the_chat(demo_chat):
    demo_chat.page.get_by_role("button", name="Ask a question").click()
    expect(demo_chat.panel).to_be_visible()
    expect(demo_chat.input).to_be_focused()


def test_reload_keeps_the_conversation(demo_chat):
    chat = greeted(demo_chat)
    ask(chat, "does it hurt?")
    chat.page.wait_for_timeout(1500)  # let any further replies to that question arrive
    bots, users, session = chat.bot.count(), chat.user.count(), chat.stored()["sid"]
    chat.page.reload()
    expect(chat.panel).to_be_visible()
    expect(chat.user).to_have_count(users)
    expect(chat.bot).to_have_count(bots)
    expect(chat.page.locator(".cw")).to_have_attribute("data-state", "online")
    chat.page.wait_for_timeout(1000)
    expect(chat.bot).to_have_count(bots)  # no second greeting
    assert chat.stored()["sid"] == session


def test_start_over_clears_the_conversation_and_starts_a_new_session(demo_chat):
    chat = greeted(demo_chat)
    ask(chat, "does it hurt?")
    old_session = chat.stored()["sid"]
    chat.page.get_by_role("button", name=re.compile("^Start over")).click()
    expect(chat.user).to_have_count(0)
    expect(chat.bot.first).to_contain_text("automated assistant")
    expect(chat.page.locator(".cw")).to_have_attribute("data-state", "online")
    assert chat.stored()["sid"] not in (None, old_session)


def test_html_and_script_in_messages_stay_inert(demo_chat):
    chat = greeted(demo_chat)
    for text in ('<img src=x onerror="window.__pwned=1">', "<script>window.__pwned=2</script>"):
        ask(chat, text)
    expect(chat.user).to_have_text(['<img src=x onerror="window.__pwned=1">', "<script>window.__pwned=2</script>"])
    expect(chat.page.locator(".cw-log img, .cw-log script")).to_have_count(0)
    assert chat.page.evaluate("() => window.__pwned") is None


def tab_to(page, selector: str, presses: int = 40) -> None:
    """Press Tab until the element matching ``selector`` has focus."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_conversation(demo_chat):
    page, chat = demo_chat.page, demo_chat
    tab_to(page, ".cw-launcher")
    page.keyboard.press("Enter")
    expect(chat.panel).to_be_visible()
    expect(chat.launcher).to_have_attribute("aria-expanded", "true")
    expect(chat.input).to_be_focused()
    expect(chat.bot.first).to_contain_text("automated assistant")
    page.keyboard.type("does it hurt?")
    page.keyboard.press("Enter")
    expect(chat.user.last).to_have_text("does it hurt?")
    expect(answers(chat).first).to_be_visible()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(chat.input).to_have_value("first line\nsecond line")
    expect(chat.user).to_have_count(1)
    page.keyboard.press("Escape")
    expect(chat.panel).to_be_hidden()
    expect(chat.launcher).to_have_attribute("aria-expanded", "false")
    expect(chat.launcher).to_be_focused()


def test_every_control_is_reachable_with_tab(demo_chat):
    page, chat = demo_chat.page, greeted(demo_chat)
    chat.launcher.focus()
    seen = set()
    for _ in range(20):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("() => document.activeElement.className"))
    assert {"cw-restart", "cw-close", "cw-log", "cw-reply", "cw-input", "cw-send"} <= seen


def test_axe_finds_no_violations_with_the_panel_open(demo_chat):
    chat = greeted(demo_chat)
    ask(chat, "does it hurt?")
    violations = chat.axe_violations()
    assert violations == [], "\n".join(
        f"{v['id']}: {v['help']} -> {[n['target'] for n in v['nodes']]}" for v in violations
    )


def test_phone_layout_fills_the_viewport(demo_chat):
    page, chat = demo_chat.page, demo_chat
    page.set_viewport_size(PHONE)
    chat.open()
    chat.panel.evaluate("panel => Promise.all(panel.getAnimations().map(a => a.finished))")
    box = {key: round(value) for key, value in chat.panel.bounding_box().items()}
    assert box == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
    expect(chat.launcher).to_be_hidden()
    page.keyboard.press("Escape")
    expect(chat.launcher).to_be_focused()


def test_server_restart_mid_conversation_recovers(demo_chat, live_stack):
    chat = greeted(demo_chat)
    ask(chat, "does it hurt?")
    errors = []

    def restart() -> None:
        try:
            live_stack.restart_rasa()
        except Exception as exc:  # noqa: BLE001 (whatever it is, the test thread reports it)
            errors.append(exc)

    worker = threading.Thread(target=restart)
    worker.start()
    try:
        expect(chat.banner).to_contain_text("connection was lost", timeout=SLOW)
        expect(chat.page.locator(".cw-status")).to_contain_text("Offline")
        chat.send("I'm pregnant, can I have dry needling?")
        expect(chat.page.locator(".cw-user .cw-meta").last).to_have_text("Waiting to send")
    finally:
        worker.join(timeout=600)
    assert not errors, errors
    expect(chat.page.locator(".cw")).to_have_attribute("data-state", "online", timeout=SLOW)
    expect(chat.banner).to_be_empty()
    reply = answers(chat)
    expect(reply.filter(has_text=re.compile("physiotherapist", re.IGNORECASE)).first).to_be_visible(timeout=SLOW)
