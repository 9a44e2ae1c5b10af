"""Staff text a patient who came in by SMS, from the dashboard, against the real running processes.

The stack runs with the SMS channel pointed at the fake Twilio API
(:mod:`tests.support.sms_stack`). A patient texts the clinic and asks for a reply by
text; a staff member signs in, opens the case, sees the number, and sends a text: it
reaches the fake Twilio with their name, the assistant stays quiet while they hold the
conversation, the conversation view shows the text, and after "Hand back" the assistant
answers again. A patient who texted STOP cannot be texted, and a WhatsApp patient
outside the 24-hour window cannot be sent free text: the page says why.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, select, update

from bot.core.settings import sync_db_url
from bot.core.store.models import Escalation, SmsContact
from tests.browser.conftest import DESKTOP
from tests.browser.dashboard import STAFF, create_account, sign_in, wait_live
from tests.conftest import require_model
from tests.support.fake_twilio import wait_until
from tests.support.sms_stack import running_sms_stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SLOW = 60_000
TEMPLATE = "HX" + "2" * 32


@pytest.fixture(scope="module")
def sms_stack(tmp_path_factory):
    require_model()
    # A template is configured, so WhatsApp offers "Reply by text" whatever the time of day.
    with running_sms_stack(tmp_path_factory.mktemp("sms-browser-var"), TWILIO_WHATSAPP_TEMPLATE_SID=TEMPLATE) as running:
        create_account(running.stack.env, STAFF)
        yield running


@pytest.fixture
def staff_page(chromium: Browser, sms_stack) -> Page:
    context = chromium.new_context(viewport=DESKTOP, locale="en-GB", reduced_motion="reduce")
    page = context.new_page()
    sign_in(page, sms_stack.web_url)
    yield page
    context.close()


def number(prefix: str = "") -> str:
    return prefix + "+4477009" + str(uuid.uuid4().int)[:5]


def case_of(sms_stack, address: str) -> str:
    sender_id = sms_stack.contact(address).sender_id
    [case] = wait_until(lambda: sms_stack.query(select(Escalation.id).where(Escalation.sender_id == sender_id)))
    return case


def asks_for_a_reply_by_text(sms_stack, patient: str) -> str:
    """Texts asking for a person, choosing a reply by text; returns the escalation's id."""
    sms_stack.text(patient, "can I talk to a real person please")
    sms_stack.text(patient, "Maria Lopez")
    assert "agree" in " ".join(sms_stack.text(patient, "Reply by text"))
    assert "reply by text to this number" in " ".join(sms_stack.text(patient, "yes"))
    return case_of(sms_stack, patient)


def test_staff_text_an_sms_patient_from_the_dashboard_and_hand_back(sms_stack, staff_page):
    patient = number()
    case = asks_for_a_reply_by_text(sms_stack, patient)
    page = staff_page

    page.goto(f"{sms_stack.web_url}/staff/escalations/{case}")
    block = page.locator("#sms")
    expect(block.get_by_role("heading", name="Text the patient (SMS)")).to_be_visible()
    expect(block).to_contain_text(patient)
    before = len(sms_stack.fake.bodies(patient))
    block.get_by_label("Text to the patient").fill("Hello Maria, can you come in tomorrow at 10?")
    block.get_by_role("button", name="Send the text").click()

    expect(page.locator("#sms-status")).to_contain_text("Text queued for the patient", timeout=SLOW)
    texts = wait_until(lambda: sms_stack.fake.bodies(patient)[before:] if
                       len(sms_stack.fake.bodies(patient)) >= before + 2 else None, timeout=30)
    assert texts[0].startswith(f"This is {STAFF.display_name} from ")
    assert texts[1].endswith(f"{STAFF.display_name} (Riverside Physiotherapy): Hello Maria, can you come in tomorrow at 10?")
    expect(block.locator(".takeover-holder")).to_contain_text("You are texting this patient")
    expect(page.locator("#conversation")).to_contain_text("can you come in tomorrow at 10?")

    quiet = len(sms_stack.fake.bodies(patient))
    sms_stack.post(patient, "yes 10 is fine, thank you")
    with pytest.raises(AssertionError):  # staff hold the conversation: no automated reply
        wait_until(lambda: len(sms_stack.fake.bodies(patient)) > quiet, timeout=4)
    page.reload()
    expect(page.locator("#conversation")).to_contain_text("yes 10 is fine, thank you")

    block.get_by_role("button", name="Hand back to the assistant").click()
    expect(page.locator("#sms-status")).to_contain_text("The assistant answers this patient again", timeout=SLOW)
    back = wait_until(lambda: sms_stack.fake.bodies(patient)[quiet:], timeout=30)
    assert "handed you back to the automated assistant" in back[0]
    answer = sms_stack.text(patient, "does dry needling hurt?")
    assert any("needle" in text for text in answer)
    page.reload()
    audit = page.locator("#audit")
    for what in ("Chat taken over", "Chat message sent", "Chat handed back"):
        expect(audit).to_contain_text(what)


def test_a_patient_who_texted_stop_cannot_be_texted_and_the_page_says_why(sms_stack, staff_page):
    patient = number()
    case = asks_for_a_reply_by_text(sms_stack, patient)
    sms_stack.text(patient, "STOP")
    sent = len(sms_stack.fake.bodies(patient))

    staff_page.goto(f"{sms_stack.web_url}/staff/escalations/{case}")

    block = staff_page.locator("#sms")
    expect(block.locator("#sms-opted-out")).to_contain_text("This patient texted STOP")
    expect(block.get_by_role("button", name="Send the text")).to_have_count(0)
    assert len(sms_stack.fake.bodies(patient)) == sent

    # A text after STOP is kept unanswered: it appears live with the page's note saying why.
    wait_live(staff_page)
    sms_stack.post(patient, "are you still there?")
    late = staff_page.locator("#turns .turn.patient", has_text="are you still there?")
    expect(late.locator(".flag.unanswered")).to_contain_text("No automated answer.", timeout=SLOW)
    expect(late.locator('.flag.unanswered[data-unanswered="opted_out"]')).to_have_count(1)
    live_note = late.locator(".flag.unanswered").inner_text()
    staff_page.reload()  # the server renders the same note
    expect(late.locator(".flag.unanswered")).to_have_text(live_note)
    assert len(sms_stack.fake.bodies(patient)) == sent


def test_whatsapp_free_text_outside_the_window_is_refused_on_the_page(sms_stack, staff_page):
    patient = number("whatsapp:")
    case = asks_for_a_reply_by_text(sms_stack, patient)
    engine = create_engine(sync_db_url(sms_stack.stack.settings.database_url), future=True)
    with engine.begin() as connection:
        connection.execute(update(SmsContact).where(SmsContact.address == patient)
                           .values(last_inbound_at=datetime.now(timezone.utc) - timedelta(hours=25)))
    engine.dispose()

    staff_page.goto(f"{sms_stack.web_url}/staff/escalations/{case}")

    block = staff_page.locator("#sms")
    expect(block.get_by_role("heading", name="Text the patient (WhatsApp)")).to_be_visible()
    expect(block.locator("#sms-window")).to_contain_text("WhatsApp's 24-hour window is closed")
    expect(block.get_by_role("button", name="Send the text")).to_have_count(0)
    before = len(sms_stack.fake.requests)
    block.get_by_role("button", name="Send the approved template").click()
    expect(staff_page.locator("#sms-status")).to_contain_text("Approved template queued", timeout=SLOW)
    sent = wait_until(lambda: [s for s in sms_stack.fake.sent if s.to == patient and s.content_sid], timeout=30)
    assert sent[0].content_sid == TEMPLATE and sent[0].body is None and len(sms_stack.fake.requests) > before
