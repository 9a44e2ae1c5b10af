"""The staff dashboard's accessibility: axe-core on every page, keyboard use, reduced motion.

axe-core (tests/browser/node_modules, pinned in package.json) runs on the sign-in page,
the queue with an urgent case in it and the conversation view, on a desktop screen and
on a tablet in portrait; it must report no violation at all.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import AXE_JS
from tests.browser.dashboard import red_flag_case, sign_in, staff_accounts, wait_live  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SCREENS = {"desktop": {"width": 1280, "height": 800}, "tablet": {"width": 768, "height": 1024}}


def axe_violations(page: Page) -> list[dict]:
    """axe-core's violations on the whole page."""
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: npm ci --prefix tests/browser")
    # Evaluated, not injected as a <script>: the dashboard's CSP rightly refuses inline scripts.
    page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    return page.evaluate("async () => (await axe.run(document)).violations")


def summary(violations: list[dict]) -> str:
    return "\n".join(
        f"{item['id']} ({item['impact']}): {item['help']} -> {[node['target'] for node in item['nodes']][:5]}"
        for item in violations
    )


@pytest.fixture(scope="module")
def urgent_case(staff_accounts) -> str:
    return red_flag_case(staff_accounts, f"a11y-{uuid.uuid4().hex[:12]}")


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_sign_in_page_has_no_axe_violations(staff_accounts, page, screen):
    page.set_viewport_size(SCREENS[screen])
    page.goto(staff_accounts.web_url + "/staff/login")
    expect(page.get_by_role("heading", name="Sign in to the staff dashboard")).to_be_visible()
    violations = axe_violations(page)
    assert violations == [], summary(violations)


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_queue_with_an_urgent_case_has_no_axe_violations(staff_accounts, urgent_case, page, screen):
    page.set_viewport_size(SCREENS[screen])
    sign_in(page, staff_accounts.web_url)
    wait_live(page)
    expect(page.locator(f"#row-{urgent_case}")).to_be_visible()
    page.locator("details.filters summary").click()  # the filters open, so axe checks them too
    violations = axe_violations(page)
    assert violations == [], summary(violations)


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_conversation_view_has_no_axe_violations(staff_accounts, urgent_case, page, screen):
    page.set_viewport_size(SCREENS[screen])
    sign_in(page, staff_accounts.web_url, path=f"/staff/escalations/{urgent_case}")
    expect(page.locator(".turn.is-trigger")).to_be_visible()
    violations = axe_violations(page)
    assert violations == [], summary(violations)


def test_the_skip_link_comes_first_and_leads_to_the_content(staff_accounts, page):
    sign_in(page, staff_accounts.web_url)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_a_case_can_be_opened_and_assigned_with_the_keyboard_alone(staff_accounts, urgent_case, page):
    sign_in(page, staff_accounts.web_url)
    link = page.locator(f"#case-{urgent_case}")
    for _ in range(80):
        page.keyboard.press("Tab")
        if link.evaluate("el => el === document.activeElement"):
            break
    expect(link).to_be_focused()
    outline = link.evaluate("el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")
    assert not outline.startswith("none") and not outline.endswith(" 0px"), f"no visible focus: {outline}"
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{staff_accounts.web_url}/staff/escalations/{urgent_case}")
    work = page.locator("#work button").first
    for _ in range(80):
        page.keyboard.press("Tab")
        if work.evaluate("el => el === document.activeElement"):
            break
    expect(work).to_be_focused()


def test_reduced_motion_turns_transitions_off(staff_accounts, context):
    page = context.new_page()
    page.emulate_media(reduced_motion="reduce")
    sign_in(page, staff_accounts.web_url)
    duration = page.get_by_role("button", name="Sign out").evaluate("el => getComputedStyle(el).transitionDuration")
    assert duration in ("0s", "")
