"""On a phone the widget shows a curated answer's short version first; wider screens show the full answer.

The socket.io channel marks the parts of an FAQ answer: the first carries
``short: {text, parts}``, each later one ``short: {part: i}``
(:class:`bot.assistant.channels.socketio.PatientSocketIOOutput`). Most tests script those
payloads with :class:`conftest.FakeRasa`, using the real curated answer and its short
version filled in for the demo clinic; the last two ask the real assistant on the demo page.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from bot.core.clinic import load_clinic
from bot.core.knowledge import catalog
from tests.browser.conftest import DESKTOP, REPO_ROOT

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
QUESTION = "Does it hurt?"
ANSWER = catalog.load().answers["utter_faq/does_it_hurt"]
VALUES = load_clinic(REPO_ROOT / "clinic.yml").template_values()
FULL = ANSWER.text.format_map(VALUES)
SHORT = ANSWER.short.format_map(VALUES)
FOLLOW_UP = [
    {"content_type": "text", "title": "Yes, please", "payload": "/affirm"},
    {"content_type": "text", "title": "No, thanks", "payload": "/deny"},
]


def in_paragraphs(text: str, count: int) -> list[str]:
    """``text`` split at sentence ends into ``count`` paragraphs, as an answer written in paragraphs arrives."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    assert len(sentences) >= count
    size = -(-len(sentences) // count)
    return [" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]


PARTS = in_paragraphs(FULL, 2)


def marked_answer(parts: list[str] = PARTS, short: str = SHORT) -> list[dict]:
    """The ``bot_uttered`` payloads of the answer as the patient channel sends them (buttons on the last)."""
    payloads: list[dict] = [{"text": part} for part in parts]
    payloads[0]["short"] = {"text": short, "parts": len(parts)}
    for number, payload in enumerate(payloads[1:], start=2):
        payload["short"] = {"part": number}
    payloads[-1]["quick_replies"] = FOLLOW_UP
    return payloads


def asked(page: Page, stub_chat, fake_rasa, viewport: dict, answer: list[dict]):
    page.set_viewport_size(viewport)
    fake_rasa.reply = lambda message: answer if message == QUESTION else []
    chat = stub_chat(initial_payload="").open()
    chat.send(QUESTION)
    expect(chat.user).to_have_text([QUESTION])
    return chat


def more_button(page: Page):
    return page.locator(".cw-log button.cw-more")


def test_a_phone_shows_the_short_version_and_the_button_reveals_the_full_answer_in_place(
    page, stub_chat, fake_rasa
):
    chat = asked(page, stub_chat, fake_rasa, PHONE, marked_answer())
    short = page.locator(".cw-log .cw-short .cw-bubble")
    full = page.locator(".cw-log .cw-full .cw-bubble")
    expect(page.get_by_role("button", name="Read the full answer", exact=True)).to_be_visible()
    more = more_button(page)
    expect(short).to_have_text(SHORT)
    expect(more).to_have_attribute("aria-expanded", "false")
    expect(full).to_have_count(len(PARTS))
    for i in range(len(PARTS)):
        expect(full.nth(i)).to_be_hidden()
    expect(chat.replies).to_have_count(2)
    expect(chat.replies.first).to_be_hidden()  # the offer's Yes/No go with the question in the full answer
    # The answer's time line is shown with the short version too.
    expect(page.locator(".cw-log .cw-short .cw-meta time")).to_have_text(re.compile(r"^\d\d:\d\d$"))

    more.focus()
    page.keyboard.press("Enter")
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("button", name="Show the short answer", exact=True)).to_be_visible()
    expect(more).to_be_focused()
    expect(short).to_be_hidden()
    expect(full).to_have_text(PARTS)
    for i in range(len(PARTS)):
        expect(full.nth(i)).to_be_visible()
    region = page.locator("#" + more.get_attribute("aria-controls"))
    expect(region.locator(".cw-bubble")).to_have_text(PARTS)
    # The full answer sits where the short one was: under the button, before anything later.
    assert page.evaluate(
        "() => { const b = document.querySelector('.cw-more'), f = document.querySelector('.cw-full');"
        " return !!(b.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING) && f.parentNode === b.parentNode; }"
    )
    expect(chat.replies.first).to_be_visible()
    expect(chat.replies.first).to_be_enabled()

    page.keyboard.press("Space")
    expect(more).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("button", name="Read the full answer", exact=True)).to_be_visible()
    expect(more).to_be_focused()
    expect(short).to_be_visible()
    expect(full.first).to_be_hidden()


def test_a_desktop_shows_the_full_answer_as_before(page, stub_chat, fake_rasa):
    chat = asked(page, stub_chat, fake_rasa, DESKTOP, marked_answer())
    expect(chat.bot).to_have_text(PARTS)
    expect(more_button(page)).to_have_count(0)
    expect(page.locator(".cw-log")).not_to_contain_text(SHORT)
    expect(chat.replies).to_have_text(["Yes, please", "No, thanks"])
    expect(chat.replies.first).to_be_visible()


def test_the_choice_survives_a_reload_and_the_view_follows_the_screen_width(page, stub_chat, fake_rasa):
    chat = asked(page, stub_chat, fake_rasa, PHONE, marked_answer())
    more_button(page).click()
    expect(more_button(page)).to_have_attribute("aria-expanded", "true")
    page.reload()
    expect(chat.panel).to_be_visible()
    expect(more_button(page)).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".cw-log .cw-full .cw-bubble")).to_have_text(PARTS)

    page.set_viewport_size(DESKTOP)
    expect(more_button(page)).to_have_count(0)
    expect(chat.bot).to_have_text(PARTS)
    page.set_viewport_size(PHONE)
    more_button(page).click()
    expect(page.locator(".cw-log .cw-short .cw-bubble")).to_have_text(SHORT)
    assert len(fake_rasa.events("user_uttered")) == 1, "nothing was asked again"


def test_a_one_part_answer_and_answers_without_a_short_version_on_a_phone(page, stub_chat, fake_rasa):
    plain = "Please call us and we'll talk it through."
    fake_rasa.reply = lambda message: {
        QUESTION: marked_answer([FULL]),
        "other": [{"text": plain}],
    }.get(message, [])
    page.set_viewport_size(PHONE)
    chat = stub_chat(initial_payload="").open()
    chat.send(QUESTION)
    more = page.get_by_role("button", name="Read the full answer")
    expect(more).to_be_visible()
    more.click()
    expect(page.locator(".cw-log .cw-full .cw-bubble")).to_have_text([FULL])
    chat.send("other")
    expect(page.locator(".cw-log > .cw-bot .cw-bubble")).to_have_text([plain])
    expect(more_button(page)).to_have_count(1)


def test_the_short_text_is_untrusted_and_bad_marks_are_ignored(page, stub_chat, fake_rasa):
    hostile = '<img src=x onerror="window.pwned=1"> call [us](javascript:alert(1)) or https://example.org/book'
    answers = {
        QUESTION: marked_answer(short=hostile),
        "bad": [
            {"text": "A part with a broken mark.", "short": {"text": "short", "parts": "many"}},
            {"text": "A stray later part.", "short": {"part": 2}},
            {"text": "A text mark.", "short": "just a string"},
        ],
    }
    fake_rasa.reply = lambda message: answers.get(message, [])
    page.set_viewport_size(PHONE)
    chat = stub_chat(initial_payload="").open()
    chat.send(QUESTION)
    short = page.locator(".cw-log .cw-short .cw-bubble")
    expect(short).to_have_text(hostile + " (opens in a new tab)")
    expect(page.locator(".cw-log img")).to_have_count(0)
    expect(short.locator("a")).to_have_count(1)
    expect(short.locator("a")).to_have_attribute("href", "https://example.org/book")
    assert page.evaluate("() => window.pwned") is None
    chat.send("bad")
    expect(page.locator(".cw-log > .cw-bot .cw-bubble")).to_have_text(
        ["A part with a broken mark.", "A stray later part.", "A text mark."]
    )
    expect(more_button(page)).to_have_count(1)


def test_axe_finds_no_violations_in_either_view_on_a_phone(page, stub_chat, fake_rasa):
    chat = asked(page, stub_chat, fake_rasa, PHONE, marked_answer())
    for _ in range(2):
        expect(more_button(page)).to_be_visible()
        violations = chat.axe_violations()
        assert violations == [], "\n".join(f"{v['id']}: {v['help']}" for v in violations)
        more_button(page).click()


def live_answer(demo_chat, viewport: dict):
    page = demo_chat.page
    page.set_viewport_size(viewport)
    demo_chat.open()
    expect(demo_chat.bot.first).to_contain_text("automated assistant")
    demo_chat.send("does it hurt?")
    expect(demo_chat.user.last).to_have_text("does it hurt?")
    return page


@pytest.mark.e2e
def test_the_real_assistant_on_a_phone_gives_the_short_version_then_the_full_answer(demo_chat):
    page = live_answer(demo_chat, PHONE)
    short = page.locator(".cw-log .cw-short .cw-bubble")
    expect(short).to_have_text(SHORT, timeout=60_000)
    expect(page.locator(".cw-log .cw-full")).to_be_hidden()
    page.get_by_role("button", name="Read the full answer").click()
    expect(page.locator(".cw-log .cw-full .cw-bubble")).to_have_text([FULL])
    expect(short).to_be_hidden()


@pytest.mark.e2e
def test_the_real_assistant_on_a_desktop_gives_the_full_answer(demo_chat):
    page = live_answer(demo_chat, DESKTOP)
    expect(demo_chat.bot.last).to_have_text(FULL, timeout=60_000)
    expect(more_button(page)).to_have_count(0)
    expect(page.locator(".cw-log")).not_to_contain_text(SHORT)
