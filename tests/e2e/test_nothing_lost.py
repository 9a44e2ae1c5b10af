"""End-to-end: repeated red flags and a hanging database, through the real processes.

* A conversation that repeats a red flag keeps one urgent escalation, counted,
  and staff get one urgent email and one urgent webhook, not one per message.
* With the escalation database hanging (a TCP listener that accepts and never
  answers), the patient still gets the urgent guidance and the clinic's phone
  number, in time, and is not told that staff were alerted; the escalation is
  spooled, and the web app's worker replays it into the store once the action
  server is back on the real database.
"""

from __future__ import annotations

import time
import uuid
import pytest

from bot.core.clinic import load_clinic
from bot.core.store.models import AuditKind, Priority, Reason
from tests.conftest import wait_for
from tests.e2e.test_rest_conversation import audit_kinds, escalations, texts

pytestmark = pytest.mark.e2e

RED_FLAGS = [
    "since my needling this morning i cant catch my breath",
    "still can't breathe properly since the needling, it's getting worse",
    "my chest is so tight since the session and i can't get my breath",
]


def sender() -> str:
    return f"lost-{uuid.uuid4().hex[:12]}"


def test_a_repeated_red_flag_keeps_one_urgent_escalation_and_one_urgent_notification(live_stack):
    who = sender()
    emergency = load_clinic(live_stack.settings.clinic_config).emergency_number
    for text in RED_FLAGS:
        assert emergency in texts(live_stack.say(who, text))

    [record] = escalations(live_stack, who)
    assert (record.reason, record.priority, record.occurrences) == (Reason.emergency, Priority.urgent, len(RED_FLAGS))
    hooks = wait_for(lambda: [h for h in live_stack.webhook.received if h["escalation_id"] == record.id])
    mails = wait_for(lambda: [m for m in live_stack.smtp.messages if record.id[:8] in m["Subject"]])
    # Several notifier passes (0.5 s apart) later, still one of each.
    time.sleep(3)
    hooks = [h for h in live_stack.webhook.received if h["escalation_id"] == record.id]
    mails = [m for m in live_stack.smtp.messages if record.id[:8] in m["Subject"]]
    assert len(hooks) == 1 and hooks[0]["urgent"] is True
    assert len(mails) == 1 and mails[0]["Subject"].startswith("[URGENT]")


def test_a_hanging_database_still_gives_urgent_guidance_and_the_escalation_is_spooled_then_stored(
    live_stack, hanging_database
):
    clinic = load_clinic(live_stack.settings.clinic_config)
    who = sender()
    live_stack.restart_actions(env={"DATABASE_URL": hanging_database.postgres_url, "STORE_TIMEOUT_SECONDS": "2"})
    try:
        started = time.monotonic()
        replies = texts(live_stack.say(who, RED_FLAGS[0]))
        elapsed = time.monotonic() - started
        assert hanging_database.accepted, "the action server never tried the hanging database"
    finally:
        live_stack.restart_actions()

    assert elapsed < 15
    assert replies.index(clinic.emergency_number) < replies.index(clinic.phone)
    assert "alerted" not in replies
    # Spooled by the action server, replayed by the web app's worker into the real store.
    [record] = wait_for(lambda: escalations(live_stack, who), timeout=30)
    assert (record.reason, record.priority) == (Reason.emergency, Priority.urgent)
    assert AuditKind.recovered_from_spool in audit_kinds(live_stack, record.id)
