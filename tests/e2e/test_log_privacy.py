"""End-to-end: no patient text, name or phone number in any process's log, on normal or failing paths.

A canary word and phone number go through the real processes: an FAQ, a red
flag, the contact form; then the same with the action server down, and with
the escalation database hanging (a TCP listener that never answers). Every
log the stack wrote must contain neither, in any notation.
"""

from __future__ import annotations

import re
import uuid
import pytest
import requests

from bot.assistant.runtime import ACTION_SECRET_HEADER
from bot.core.clinic import load_clinic
from tests.e2e.test_rest_conversation import escalations, texts

pytestmark = pytest.mark.e2e

CANARY = "zephyrwood"
NAME = "Quentin Zephyrwood"
PHONE = "020 7946 0123"
# Any notation of the number contains these digits in a row once separators are gone.
PHONE_DIGITS = "79460123"
DIGIT_RUNS = re.compile(r"\+?\d[\d\s().-]*\d")


def sender() -> str:
    return f"canary-{uuid.uuid4().hex[:12]}"


def faq(live_stack) -> None:
    assert live_stack.say(sender(), f"does dry needling hurt? asking for my friend {CANARY}")


def red_flag(live_stack) -> list[dict]:
    return live_stack.say(
        sender(), f"since my needling this morning i cant catch my breath, this is {CANARY}, call {PHONE}"
    )


def contact_form(live_stack) -> str:
    who = sender()
    live_stack.say(who, f"I'm pregnant, can I have dry needling? {CANARY} here")
    live_stack.say(who, "/affirm")
    live_stack.say(who, NAME)
    live_stack.say(who, "phone")
    live_stack.say(who, PHONE)
    live_stack.say(who, "/affirm")
    return who


def malformed_action_call() -> dict:
    """An action call whose latest message is a string: the red-flag action fails on it."""
    text = f"{CANARY} cannot breathe, call {PHONE}"
    return {
        "next_action": "action_handle_adverse_event",
        "sender_id": sender(),
        "version": "3.6.0",
        "domain": {},
        "tracker": {"sender_id": "x", "slots": {"contact_detail": PHONE}, "latest_message": text, "events": []},
    }


def test_no_patient_data_reaches_any_log(live_stack, hanging_database):
    faq(live_stack)
    red_flag(live_stack)
    who = contact_form(live_stack)
    [record] = escalations(live_stack, who)
    assert record.contact_name == NAME  # the canary really went through the processes

    live_stack.stop_actions()
    try:
        assert load_clinic(live_stack.settings.clinic_config).phone in texts(red_flag(live_stack))
        faq(live_stack)
    finally:
        live_stack.start_actions()

    # A call the action cannot handle (as from a Rasa of another version): the error
    # answer and the error log must not echo the tracker.
    crash = requests.post(
        f"http://127.0.0.1:{live_stack.settings.action_port}/webhook",
        json=malformed_action_call(),
        headers={ACTION_SECRET_HEADER: live_stack.settings.action_secret},
        timeout=30,
    )
    assert crash.status_code == 500
    assert CANARY not in crash.text.lower() and PHONE_DIGITS not in re.sub(r"\D", "", crash.text)

    live_stack.restart_actions(env={"DATABASE_URL": hanging_database.postgres_url, "STORE_TIMEOUT_SECONDS": "2"})
    try:
        red_flag(live_stack)
        contact_form(live_stack)
        assert hanging_database.accepted, "the action server never tried the hanging database"
    finally:
        live_stack.restart_actions()

    log_dir = live_stack.stack.log_dir
    logs = {path.name: path.read_text(encoding="utf-8", errors="replace") for path in log_dir.glob("*.log")}
    assert set(logs) == {"rasa.log", "actions.log", "web.log"}
    # The logs are real: startup, both failing paths and stored escalations are in them.
    assert "Starting Rasa server" in logs["rasa.log"]
    # With the action server stopped, the Rasa server answers the red flag itself.
    assert "answered by the Rasa server" in logs["rasa.log"]
    assert "escalation store failed" in logs["actions.log"]
    assert "action action_handle_adverse_event failed: AttributeError" in logs["actions.log"]
    assert re.search(r"escalation \S+ created \(emergency\)", logs["actions.log"])
    for name, text in logs.items():
        numbers = {re.sub(r"\D", "", run) for run in DIGIT_RUNS.findall(text)}
        assert CANARY not in text.lower(), f"the canary word is in {name}"
        assert PHONE not in text, f"the phone number is in {name}"
        assert not any(PHONE_DIGITS in number for number in numbers), f"the phone number's digits are in {name}"
