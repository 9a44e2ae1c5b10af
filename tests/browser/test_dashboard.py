"""The staff dashboard in Chromium, against the real web app, Rasa server and action server.

A patient talks to the assistant over Rasa's REST webhook; staff watch the queue and
work on the case in the browser, and every step shows up where staff look for it.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.dashboard import (  # noqa: F401 - staff_accounts is a fixture
    COLLEAGUE,
    RED_FLAG,
    STAFF,
    escalation_ids,
    red_flag_case,
    sign_in,
    staff_accounts,
    wait_live,
)
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('patient')</script>"


@pytest.fixture
def accounts(staff_accounts):
    return staff_accounts


def new_sender() -> str:
    return f"browser-{uuid.uuid4().hex[:12]}"


def no_dialogs(page: Page) -> list[str]:
    """Collect any JavaScript dialog the page opens (a patient's script running would open one)."""
    opened: list[str] = []
    page.on("dialog", lambda dialog: (opened.append(dialog.message), dialog.dismiss()))
    return opened


def test_staff_sign_in_and_land_on_the_queue(accounts, page):
    page.goto(accounts.web_url + "/staff/")
    expect(page).to_have_url(re.compile(r"/staff/login"))
    sign_in(page, accounts.web_url)
    expect(page).to_have_url(re.compile(r"/staff/$"))
    expect(page.get_by_role("heading", name="Escalations", level=1)).to_be_visible()
    expect(page.locator(".account .who")).to_contain_text("Pat Physio")
    expect(page.locator(".account .who")).to_contain_text("Staff")


def test_a_red_flag_appears_in_the_queue_live_and_marked_urgent(accounts, page):
    sign_in(page, accounts.web_url)
    wait_live(page)
    page.evaluate("() => { window.stillTheSamePage = true; }")

    case_id = red_flag_case(accounts, new_sender())

    row = page.locator(f"#row-{case_id}")
    expect(row).to_be_visible()
    expect(row).to_have_class(re.compile(r"\bis-urgent\b"))
    expect(row.locator(".badge.urgent")).to_have_text("Urgent")
    expect(row.locator(".badge.urgent svg")).to_have_count(1)
    expect(row).to_contain_text("Red flag: possible emergency")
    assert page.evaluate("() => window.stillTheSamePage === true"), "the queue reloaded instead of updating"
    expect(page.locator("#announcer")).to_contain_text(re.compile(r"new escalation.*urgent", re.IGNORECASE))
    border = row.evaluate("r => getComputedStyle(r).borderLeftWidth")
    assert float(border.rstrip("px")) >= 4


def test_case_work_shows_in_the_audit_trail(accounts, page):
    case_id = red_flag_case(accounts, new_sender())
    sign_in(page, accounts.web_url, path=f"/staff/escalations/{case_id}")
    expect(page).to_have_url(re.compile(rf"/staff/escalations/{case_id}"))
    audit = page.locator("#audit")
    expect(page.locator(".urgent-banner")).to_contain_text("Urgent")

    page.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_role("status").filter(has_text="Assignment saved.")).to_be_focused()  # said where it happened
    expect(audit).to_contain_text(f"Assigned to {STAFF.username}")

    page.get_by_label("Give the case to").select_option(label=f"{COLLEAGUE.display_name} ({COLLEAGUE.username})")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(audit).to_contain_text(f"Assigned to {COLLEAGUE.username}")

    page.get_by_role("button", name="Start working on it").click()
    expect(audit).to_contain_text("Status changed from New to In progress")

    page.get_by_label("Add a note").fill("Rang the patient: she is on her way to A&E.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#notes")).to_contain_text("Rang the patient: she is on her way to A&E.")
    expect(audit).to_contain_text("Private note added")

    page.get_by_label("What happened").select_option(label="Referred to emergency care")
    page.get_by_role("button", name="Record outcome").click()
    expect(audit).to_contain_text("Outcome recorded: Referred to emergency care")

    page.get_by_role("button", name="Mark as resolved").click()
    expect(audit).to_contain_text("Status changed from In progress to Resolved")
    expect(audit.locator("li").first).to_contain_text(f"by {STAFF.username}")
    expect(page.locator(".urgent-banner")).to_have_count(0)  # resolved: no longer shouted


def test_the_conversation_view_shows_the_trigger_and_later_messages_live(accounts, page):
    sender = new_sender()
    case_id = red_flag_case(accounts, sender)
    opened = no_dialogs(page)
    sign_in(page, accounts.web_url, path=f"/staff/escalations/{case_id}")
    wait_live(page)
    expect(page.locator(".turn.is-trigger .text")).to_have_text(RED_FLAG)
    expect(page.locator("#trigger-heading + p")).to_contain_text("Red flag")

    accounts.say(sender, XSS)
    accounts.say(sender, SCRIPT)

    patient = page.locator("#turns .turn.patient .text")
    expect(patient.filter(has_text="onerror")).to_have_text(XSS)
    expect(patient.filter(has_text="alert('patient')")).to_have_text(SCRIPT)
    expect(page.locator("#after-count")).to_have_text("The patient wrote 2 messages after the escalation.")
    expect(page.locator("#announcer")).to_contain_text(re.compile(r"messages? from the patient", re.IGNORECASE))
    page.reload()  # and rendered by the server, too
    expect(patient.filter(has_text="onerror")).to_have_text(XSS)
    assert page.locator("#turns img, #turns script").count() == 0
    assert opened == [], f"a patient's script ran: {opened}"


def test_search_finds_a_case_without_putting_the_words_in_the_address(accounts, page):
    sender = new_sender()
    accounts.say(sender, "I'm pregnant, can I have dry needling for my back?")
    accounts.say(sender, "/affirm")
    accounts.say(sender, "Zelda Quinton")
    accounts.say(sender, "phone")
    accounts.say(sender, "020 7946 0958")
    accounts.say(sender, "/affirm")
    [case_id] = wait_for(lambda: escalation_ids(accounts.database_url, sender))
    sign_in(page, accounts.web_url)
    page.get_by_label("Search names, contact details and patients' messages").fill("zelda")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(f"#row-{case_id}")).to_contain_text("Zelda Quinton")
    expect(page.locator("tbody tr[data-id]")).to_have_count(1)
    assert "zelda" not in page.url.lower()


def test_the_page_goes_to_sign_in_when_the_session_ends(accounts, context):
    queue, other = context.new_page(), context.new_page()
    sign_in(queue, accounts.web_url)
    wait_live(queue)
    other.goto(accounts.web_url + "/staff/")
    other.get_by_role("button", name="Sign out").click()  # the same browser session, ended from another tab
    expect(queue).to_have_url(re.compile(r"/staff/login\?next="), timeout=30_000)
    expect(queue.get_by_role("heading", name="Sign in to the staff dashboard")).to_be_visible()
