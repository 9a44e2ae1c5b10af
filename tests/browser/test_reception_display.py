"""The reception display in Chromium, against the real web app, Rasa server and action server (issue 22).

A reception account signs in on its screen; a patient reports a red flag over Rasa's REST
webhook; the display shows the new urgent case (highlighted, initials only) without a
reload, beeps, and counts it in the tab title; nothing the patient wrote reaches the page.
Tones are counted by wrapping ``AudioContext`` in an init script (headless Chromium plays nothing).
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.dashboard import Account, create_account, red_flag_case, sign_in, staff_accounts  # noqa: F401 - fixture
from tests.browser.test_dashboard_a11y import axe_violations, summary

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

DESK = Account("front.desk", "a long test password for the front desk", "Front desk", role="reception")

COUNT_TONES = """
(() => {
  window.__tones = 0;
  const Real = window.AudioContext;
  if (Real) {
    window.AudioContext = class extends Real {
      createOscillator() { window.__tones += 1; return super.createOscillator(); }
    };
  }
})();
"""


@pytest.fixture
def desk(context: BrowserContext, staff_accounts) -> BrowserContext:  # noqa: F811 - fixture
    create_account(staff_accounts.stack.env, DESK)
    context.add_init_script(COUNT_TONES)
    return context


def test_the_display_shows_a_new_urgent_case_live_without_patient_text(desk, staff_accounts):
    page = desk.new_page()
    sign_in(page, staff_accounts.web_url, DESK, path="/staff/display")
    expect(page).to_have_url(re.compile(r"/staff/display$"))
    expect(page.get_by_role("heading", name="Waiting for the clinic team")).to_be_visible()
    expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "live")
    tones = page.evaluate("() => window.__tones")

    case_id = red_flag_case(staff_accounts, f"display-{uuid.uuid4().hex[:12]}")

    row = page.locator(f'tr[data-id="{case_id}"]')
    expect(row).to_be_visible(timeout=15_000)
    expect(row).to_have_class(re.compile(r"\bis-urgent\b"))
    expect(row).to_contain_text("Urgent")
    expect(row.locator("td.initials")).to_have_text("—")  # the patient gave no name
    expect(row.locator("time")).to_have_text(re.compile(r"^(Under a minute|\d+ min)$"))
    page.wait_for_function(f"() => window.__tones > {tones}", timeout=5_000)
    expect(page).to_have_title(re.compile(r"^\(\d+\) Reception display"))
    html = page.content()
    assert "chest" not in html and "breath" not in html
    assert "/staff/escalations" not in html
    # The only button is signing out.
    assert [name.strip() for name in page.get_by_role("button").all_inner_texts()] == ["Sign out"]
    assert summary(axe_violations(page)) == ""

    # Any other dashboard page brings the screen back to the display.
    page.goto(staff_accounts.web_url + f"/staff/escalations/{case_id}")
    expect(page).to_have_url(re.compile(r"/staff/display$"))

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the staff dashboard")).to_be_visible()
