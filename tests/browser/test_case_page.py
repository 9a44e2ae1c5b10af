"""The case page built for acting (issue 22, item 3), in Chromium against the real processes.

The target: from the browser notification of a new urgent case to the first staff line in
the patient's chat in at most three actions (open the case from the notification, take over,
type the line and press Enter), on a 1280x900 screen where the reply box needs no scrolling.
Also: a button tap reads as the button's title with the model's intent behind a closed
details toggle; "/" in the reply box inserts the "call 999 now" reply; "?" lists the
shortcuts; resolving a case whose chat staff hold asks to hand back first; the queue's export
downloads the CSV of a date range.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from bot.dashboard.staff import canned_replies
from tests.browser.conftest import Chat
from tests.browser.dashboard import RED_FLAG, STAFF, create_account, escalation_ids, sign_in, wait_live
from tests.browser.test_dashboard_alerts import OBSERVE, notifications
from tests.browser.test_takeover import SLOW, ask_for_a_person, patient_page
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SCREEN = {"width": 1280, "height": 900}


@pytest.fixture
def staff_context(chromium: Browser, live_stack) -> BrowserContext:
    """A 1280x900 staff browser whose notifications are recorded (headless Chromium shows none)."""
    create_account(live_stack.stack.env, STAFF)
    context = chromium.new_context(viewport=SCREEN, locale="en-GB", accept_downloads=True)
    context.grant_permissions(["notifications"], origin=live_stack.web_url)
    context.add_init_script(OBSERVE)
    yield context
    context.close()


def in_first_screen(page: Page, locator) -> bool:
    """Whether ``locator`` is wholly inside the first 900 px of the page, and the page is not scrolled."""
    return page.evaluate("() => window.scrollY") == 0 and in_view(locator)


def in_view(locator) -> bool:
    """Whether ``locator`` is wholly inside the 900 px high window as it is now."""
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= SCREEN["height"]


def test_from_the_notification_to_a_first_line_in_the_patient_s_chat_in_three_actions(staff_context, live_stack):
    queue = staff_context.new_page()
    sign_in(queue, live_stack.web_url)
    wait_live(queue)
    elsewhere = staff_context.new_page()
    elsewhere.goto("about:blank")
    elsewhere.bring_to_front()
    before = len(notifications(queue))

    chat = patient_page(queue.context.browser, live_stack)
    chat.send(RED_FLAG)
    expect(chat.bot.filter(has_text="999")).to_be_visible(timeout=SLOW)
    [case_id] = wait_for(lambda: escalation_ids(live_stack.database_url, chat.stored()["sid"]))
    queue.wait_for_function(f"() => window.__notifications.length > {before}", timeout=10_000)
    assert any(n["tag"] == f"staff-case-{case_id}" for n in notifications(queue)[before:])

    # (1) Click the notification: the case opens, its reply box on the first screen.
    queue.evaluate("() => { setTimeout(() => window.__lastNotification.onclick(), 0); }")
    expect(queue).to_have_url(re.compile(rf"/staff/escalations/{case_id}$"))
    take_over = queue.get_by_role("button", name="Take over the chat")
    expect(take_over).to_be_visible()
    assert in_first_screen(queue, take_over)
    expect(queue.locator("#who")).to_contain_text("Red flag: possible emergency")

    # (2) Take over.
    take_over.click()
    box = queue.get_by_label("Message to the patient")
    expect(box).to_be_visible()
    assert in_view(box)

    # (3) Type the line and press Enter.
    box.fill("Pat from the clinic here: please call 999 now, I'm staying with you in this chat.")
    box.press("Enter")

    line = chat.page.locator(".cw-staff .cw-bubble").last
    expect(line).to_have_text("Pat from the clinic here: please call 999 now, I'm staying with you in this chat.",
                              timeout=SLOW)
    chat.page.context.close()


def test_the_case_page_reads_plainly_inserts_canned_replies_and_asks_to_hand_back_before_resolving(
        staff_context, live_stack):
    chat = patient_page(staff_context.browser, live_stack)
    ask_for_a_person(chat, "Maria Lopez")
    chat.page.get_by_role("button", name="Reply in this chat").click()
    chat.page.get_by_role("button", name="Yes, I agree").click()
    expect(chat.bot.filter(has_text="the reply will appear here")).to_be_visible(timeout=SLOW)
    [case_id] = wait_for(lambda: escalation_ids(live_stack.database_url, chat.stored()["sid"]))

    page = staff_context.new_page()
    sign_in(page, live_stack.web_url, path=f"/staff/escalations/{case_id}")
    expect(page.locator("#who")).to_contain_text("Maria Lopez")

    # The tap on "Talk to a person" reads as the button's title; the intent waits behind "Details".
    tapped = page.locator("#turns .turn.patient").filter(has_text="Talk to a person").first
    expect(tapped.locator(".text")).to_have_text("Talk to a person")
    details = tapped.locator("details.nlu")
    expect(details.locator("code").first).to_be_hidden()
    details.locator("summary").click()
    expect(details.locator("code").first).to_be_visible()
    expect(page.locator("#turns .turn.patient .text").filter(has_text=re.compile(r"^/"))).to_have_count(0)

    # "?" lists the shortcuts (not while typing); Escape closes the list.
    page.locator("body").press("?")
    shortcuts = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(shortcuts).to_be_visible()
    expect(shortcuts).to_contain_text("Go to the reply box")
    page.keyboard.press("Escape")
    expect(shortcuts).to_be_hidden()

    page.get_by_role("button", name="Take over the chat").click()
    box = page.get_by_label("Message to the patient")
    expect(box).to_be_visible()

    # "/" opens the canned replies, filtered as you type; Enter inserts the text, Enter again sends.
    box.press_sequentially("/99")
    listbox = page.get_by_role("listbox", name="Canned replies")
    expect(listbox).to_be_visible()
    expect(listbox.get_by_role("option")).to_have_count(1)
    assert box.get_attribute("aria-activedescendant") == listbox.get_by_role("option").first.get_attribute("id")
    box.press("Enter")
    expect(listbox).to_be_hidden()
    body = {reply.shortcut: reply.body for reply in canned_replies.load_defaults()}["999"]
    expect(box).to_have_value(body)
    box.press("Enter")
    expect(chat.page.locator(".cw-staff .cw-bubble").last).to_have_text(body, timeout=SLOW)

    # Resolving while the chat is held asks to hand back first.
    start = page.get_by_role("button", name="Start working on it")
    if start.count():  # taking over may have started the work already
        start.click()
    page.get_by_role("button", name="Mark as resolved").click()
    step = page.get_by_role("alertdialog").filter(has_text="You still have the chat")
    expect(step).to_be_visible()
    expect(page.locator(".badges")).not_to_contain_text("Resolved")
    step.get_by_role("button", name="Hand back and resolve").click()
    expect(page.get_by_role("status").filter(has_text="The case is resolved.")).to_be_visible()
    expect(chat.page.locator(".cw-note .cw-bubble").last).to_contain_text("the automated assistant is back",
                                                                          timeout=SLOW)
    chat.page.context.close()


def test_the_queue_exports_the_csv_of_a_date_range(staff_context, live_stack):
    page = staff_context.new_page()
    sign_in(page, live_stack.web_url)
    page.get_by_text("Export CSV").click()
    form = page.locator("#export-form")
    today = date.today()
    form.get_by_label("From").fill((today - timedelta(days=7)).isoformat())
    form.get_by_label("To (inclusive)").fill(today.isoformat())
    with page.expect_download() as download:
        form.get_by_role("button", name="Download CSV").click()
    file = download.value
    assert file.suggested_filename == f"escalations-{(today - timedelta(days=7)).isoformat()}-to-{today.isoformat()}.csv"
    assert open(file.path(), encoding="utf-8").readline().startswith("id,created_at,")
