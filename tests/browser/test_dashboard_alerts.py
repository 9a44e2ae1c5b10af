"""Dashboard alerts in Chromium, against the real web app, Rasa server and action server (issue 22).

A staff member signs in and leaves the queue in a background tab; a patient reports a red
flag over Rasa's REST webhook; the background tab raises a browser notification (and a
sound) within 5 s of the case being stored, and its title counts the unopened urgent case.
Notifications and sounds are observed by replacing ``window.Notification`` and wrapping
``AudioContext`` in an init script: headless Chromium shows neither, but the page's calls
are what a person would see and hear.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import create_engine, select, update

from bot.core.settings import sync_db_url
from bot.core.store.models import StaffSession, StaffUser

from tests.browser.dashboard import STAFF, red_flag_case, sign_in, staff_accounts, wait_live  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

#: Records every notification and every tone the page makes, instead of showing or playing them.
OBSERVE = """
(() => {
  const notes = [];
  window.__notifications = notes;
  window.__tones = 0;
  class Recorded {
    constructor(title, options) {
      this.title = title;
      this.options = options || {};
      this.onclick = null;
      notes.push({ title: title, body: this.options.body || "", tag: this.options.tag || "",
                   hidden: document.visibilityState === "hidden" });
      window.__lastNotification = this;
    }
    close() {}
  }
  Recorded.permission = "granted";
  Recorded.requestPermission = () => Promise.resolve("granted");
  window.Notification = Recorded;
  const Real = window.AudioContext;
  if (Real) {
    window.AudioContext = class extends Real {
      createOscillator() { window.__tones += 1; return super.createOscillator(); }
    };
  }
})();
"""


@pytest.fixture
def alerted(context: BrowserContext, staff_accounts) -> BrowserContext:  # noqa: F811 - fixture
    context.grant_permissions(["notifications"], origin=staff_accounts.web_url)
    context.add_init_script(OBSERVE)
    return context


def notifications(page: Page) -> list[dict]:
    return page.evaluate("() => window.__notifications")


def background_queue(context: BrowserContext, web_url: str) -> Page:
    """The queue, signed in and live, then left behind another tab."""
    queue = context.new_page()
    sign_in(queue, web_url)
    wait_live(queue)
    other = context.new_page()
    other.goto("about:blank")
    other.bring_to_front()
    return queue


def test_a_new_urgent_case_raises_a_notification_in_a_background_tab_within_5_seconds(alerted, staff_accounts):
    queue = background_queue(alerted, staff_accounts.web_url)
    before = len(notifications(queue))

    case_id = red_flag_case(staff_accounts, f"alerts-{uuid.uuid4().hex[:12]}")
    stored = time.monotonic()
    queue.wait_for_function(f"() => window.__notifications.length > {before}", timeout=5_000)
    assert time.monotonic() - stored <= 5.0

    [note] = [n for n in notifications(queue)[before:] if n["tag"] == f"staff-case-{case_id}"]
    assert note["title"] == "New urgent case"
    assert "chest" not in note["body"] and "breath" not in note["body"]  # never the patient's words
    assert queue.evaluate("() => window.__tones") > 0
    expect(queue).to_have_title(re.compile(r"^\(\d+\) "))

    # Clicking the notification opens the case.
    queue.evaluate("() => { setTimeout(() => window.__lastNotification.onclick(), 0); }")
    expect(queue).to_have_url(re.compile(rf"/staff/escalations/{case_id}$"))


def test_a_reply_in_a_case_i_hold_notifies_me(alerted, staff_accounts):
    sender = f"alerts-{uuid.uuid4().hex[:12]}"
    case_id = red_flag_case(staff_accounts, sender)
    page = alerted.new_page()
    sign_in(page, staff_accounts.web_url, path=f"/staff/escalations/{case_id}")
    page.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_role("heading", name=re.compile(f"Assigned to: {STAFF.display_name}"))).to_be_visible()
    wait_live(page)
    before = len(notifications(page))

    staff_accounts.say(sender, "it is getting a bit easier now")

    page.wait_for_function(
        f"() => window.__notifications.slice({before}).some(n => n.title === 'Patient replied')", timeout=10_000)
    assert "easier" not in str(notifications(page))


def test_with_notifications_and_sound_turned_off_a_new_urgent_case_stays_quiet(alerted, staff_accounts):
    page = alerted.new_page()
    sign_in(page, staff_accounts.web_url)
    page.get_by_text("Alerts", exact=True).click()
    page.get_by_label("Browser notification").uncheck()
    page.get_by_label("Sound").uncheck()
    page.get_by_role("button", name="Save alert settings").click()
    wait_live(page)
    try:
        red_flag_case(staff_accounts, f"alerts-{uuid.uuid4().hex[:12]}")
        expect(page).to_have_title(re.compile(r"^\(\d+\) "))  # the title still counts it
        time.sleep(3)
        assert notifications(page) == [] and page.evaluate("() => window.__tones") == 0
    finally:
        page.get_by_text("Alerts", exact=True).click()
        page.get_by_label("Browser notification").check()
        page.get_by_label("Sound").check()
        page.get_by_role("button", name="Save alert settings").click()


def idle_in(database_url: str, username: str, seconds: int) -> None:
    """Move the account's live sessions to ``seconds`` before their idle sign-out, as if left alone."""
    engine = create_engine(sync_db_url(database_url), future=True)
    try:
        with engine.begin() as connection:
            user_id = connection.execute(select(StaffUser.id).where(StaffUser.username == username)).scalar_one()
            connection.execute(
                update(StaffSession).where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
                # Left alone: the last activity is long past too, as it would be (the store only
                # records activity 30 s apart, so a recent last_seen_at would make staying a no-op).
                .values(idle_until=datetime.now(timezone.utc) + timedelta(seconds=seconds),
                        last_seen_at=datetime.now(timezone.utc) - timedelta(minutes=10))
            )
    finally:
        engine.dispose()


def test_a_minute_before_the_idle_sign_out_the_page_warns_and_staying_keeps_the_session(alerted, staff_accounts):
    page = alerted.new_page()
    sign_in(page, staff_accounts.web_url)
    wait_live(page)
    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_hidden()

    idle_in(staff_accounts.database_url, STAFF.username, 50)
    red_flag_case(staff_accounts, f"alerts-{uuid.uuid4().hex[:12]}")  # any event makes the page look again

    expect(warning).to_be_visible(timeout=10_000)
    expect(warning).to_contain_text("You will be signed out in")
    warning.get_by_role("button", name="Stay signed in").click()
    expect(warning).to_be_hidden()
    assert page.evaluate("() => fetch('/staff/api/me').then(r => r.status)") == 200


def test_when_the_session_ends_elsewhere_the_sign_in_page_says_so(alerted, staff_accounts):
    queue, other = alerted.new_page(), alerted.new_page()
    sign_in(queue, staff_accounts.web_url)
    wait_live(queue)
    other.goto(staff_accounts.web_url + "/staff/")
    other.get_by_role("button", name="Sign out").click()
    expect(queue).to_have_url(re.compile(r"/staff/login\?next=.*&ended=1"), timeout=30_000)
    expect(queue.locator(".notice")).to_contain_text("Your session ended")


def test_after_the_idle_sign_out_the_sign_in_page_says_why(alerted, staff_accounts):
    page = alerted.new_page()
    sign_in(page, staff_accounts.web_url)
    wait_live(page)

    idle_in(staff_accounts.database_url, STAFF.username, 2)

    expect(page).to_have_url(re.compile(r"/staff/login\?next=.*&idle=1"), timeout=30_000)
    expect(page.locator(".notice")).to_contain_text("was not used for")
