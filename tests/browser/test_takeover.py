"""Staff take over a web-chat conversation, against the real running processes.

A patient on the demo page asks for a person in the widget and chooses "Reply in this
chat" (offered because a staff member is signed in); the staff member opens the case on
the dashboard, takes the chat over, and they write to each other; the patient's widget
names the person; staff hand back and the assistant answers again. With nobody signed
in, the widget never offers the chat reply. With ``TAKEOVER_SCREENSHOT=<dir>`` the test
also writes ``widget-takeover.png`` there (the README's screenshot).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, update

from bot.core.clinic import load_clinic
from bot.core.settings import sync_db_url
from bot.core.store.models import StaffSession
from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP, Chat  # noqa: F401 - CHROMIUM_ARGS documents the launch
from tests.browser.dashboard import STAFF, create_account, escalation_ids, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SLOW = 60_000


def sign_everyone_out(database_url: str) -> None:
    """End every dashboard session, as if all staff had signed out."""
    engine = create_engine(sync_db_url(database_url), future=True)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(StaffSession).where(StaffSession.ended_at.is_(None)).values(ended_at=datetime.now(timezone.utc))
            )
    finally:
        engine.dispose()


def patient_page(browser: Browser, live_stack) -> Chat:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", reduced_motion="reduce")
    page = context.new_page()
    page.goto(live_stack.web_url + "/")
    chat = Chat(page)
    chat.open()
    expect(chat.replies.first).to_be_enabled(timeout=SLOW)
    return chat


def ask_for_a_person(chat: Chat, name: str) -> None:
    """From the greeting: "Talk to a person", then the name; the contact-method question follows."""
    chat.page.get_by_role("button", name="Talk to a person").click()
    expect(chat.bot.filter(has_text="what name should they use")).to_be_visible(timeout=SLOW)
    chat.send(name)
    expect(chat.bot.filter(has_text="How would you like us to contact you?")).to_be_visible(timeout=SLOW)


def offered(chat: Chat) -> list[str]:
    group = chat.page.locator(".cw-replies").last
    expect(group.locator(".cw-reply").first).to_be_enabled()
    return [text.strip() for text in group.locator(".cw-reply").all_inner_texts()]


@pytest.fixture
def staff_page(chromium: Browser, live_stack) -> Page:
    create_account(live_stack.stack.env, STAFF)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    sign_in(page, live_stack.web_url)
    yield page
    context.close()


def test_reply_in_this_chat_is_not_offered_while_nobody_is_signed_in(chromium, live_stack):
    sign_everyone_out(live_stack.database_url)
    chat = patient_page(chromium, live_stack)

    ask_for_a_person(chat, "Maria Lopez")

    assert offered(chat) == ["Phone call or text", "Email"]
    chat.send("chat")
    expect(chat.bot.filter(has_text="Nobody from the team is signed in")).to_be_visible(timeout=SLOW)
    assert "Reply in this chat" not in offered(chat)
    chat.page.context.close()


def test_staff_take_over_write_both_ways_and_hand_back(chromium, live_stack, staff_page):
    clinic = load_clinic(live_stack.settings.clinic_config)
    chat = patient_page(chromium, live_stack)
    ask_for_a_person(chat, "Maria Lopez")
    assert offered(chat) == ["Phone call or text", "Email", "Reply in this chat"]
    chat.page.get_by_role("button", name="Reply in this chat").click()
    chat.page.get_by_role("button", name="Yes, I agree").click()
    expect(chat.bot.filter(has_text="the reply will appear here")).to_be_visible(timeout=SLOW)
    [case] = escalation_ids(live_stack.database_url, chat.stored()["sid"])

    staff_page.goto(f"{live_stack.web_url}/staff/escalations/{case}")
    block = staff_page.locator("#takeover")
    expect(block).to_contain_text("The patient's chat is open.")
    block.get_by_role("button", name="Take over the chat").click()
    expect(staff_page.locator("#takeover-status")).to_contain_text("You have the chat")

    joined = chat.page.locator(".cw-note .cw-bubble").last
    expect(joined).to_have_text(f"{STAFF.display_name} from {clinic.name} has joined the chat. "
                                "You're now talking with a member of our team, not the automated assistant.")
    expect(chat.page.locator(".cw-status")).to_contain_text(f"{STAFF.display_name}, clinic team · Online")

    staff_page.get_by_label("Message to the patient").fill("Hello Maria, I'm Pat, one of the physiotherapists.")
    staff_page.get_by_role("button", name="Send to the patient").click()
    expect(staff_page.locator("#takeover-status")).to_contain_text("Message delivered")
    mine = chat.page.locator(".cw-staff").last
    expect(mine.locator(".cw-who")).to_have_text(f"{STAFF.display_name} · clinic team")
    expect(mine.locator(".cw-bubble")).to_have_text("Hello Maria, I'm Pat, one of the physiotherapists.")

    assistant_turns = chat.bot.count()
    chat.send("Thanks Pat. Is it safe for me while I'm pregnant?")
    expect(staff_page.locator("#turns .turn.patient").last).to_contain_text("Is it safe for me while I'm pregnant?",
                                                                         timeout=SLOW)
    chat.page.wait_for_timeout(2000)
    assert chat.bot.count() == assistant_turns, "the assistant answered while staff had the chat"
    expect(chat.page.locator(".cw-typing")).to_be_hidden()

    if os.environ.get("TAKEOVER_SCREENSHOT"):
        out = Path(os.environ["TAKEOVER_SCREENSHOT"])
        out.mkdir(parents=True, exist_ok=True)
        staff_page.get_by_label("Message to the patient").fill(
            "Let's talk about that at your appointment. Please don't book needling until we have.")
        staff_page.get_by_role("button", name="Send to the patient").click()
        expect(chat.page.locator(".cw-staff")).to_have_count(2)
        chat.page.wait_for_timeout(400)
        chat.page.screenshot(path=str(out / "widget-takeover.png"))

    staff_page.get_by_role("button", name="Hand back to the assistant").click()
    expect(staff_page.locator("#takeover-status")).to_contain_text("The assistant has the chat again")
    expect(chat.page.locator(".cw-note .cw-bubble").last).to_contain_text("the automated assistant is back")
    expect(chat.page.locator(".cw-status")).to_have_text(re.compile(r"^Automated assistant"))

    chat.send("does it hurt?")
    expect(chat.bot.last).to_contain_text(re.compile(r"pain|needle|twitch|ache", re.IGNORECASE), timeout=SLOW)
    chat.page.context.close()
