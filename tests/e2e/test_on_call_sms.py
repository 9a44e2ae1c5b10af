"""End-to-end: an urgent case texted in reaches the on-call contact by SMS, and is re-alerted wider.

The real Rasa server, action server and web app run with a clinic whose ``on_call`` lists
two contacts and re-alerts after 6 seconds (``realert_minutes: 0.1``); Twilio is the local
fake (:mod:`tests.support.fake_twilio`). A patient texts a red flag; the notifier (web app)
queues the on-call text in the SMS outbox and the Rasa process's sender delivers it. Nobody
opens the case, so the next round goes to the first contact again and to the second. When
the first contact texts back instead, the text acknowledges the case and the rounds stop.
"""

from __future__ import annotations

import time
import uuid

import pytest
import yaml
from sqlalchemy import select

from bot.core.paths import REPO_ROOT
from bot.core.store.models import AuditEvent, AuditKind, Escalation, Priority
from tests.conftest import require_model
from tests.support.fake_twilio import wait_until
from tests.support.sms_stack import running_sms_stack

pytestmark = pytest.mark.e2e

DUTY = "+447700900123"
LEAD = "+447700900456"
#: The issue's target: the on-call SMS reaches Twilio within 10 s of the patient's text.
WITHIN_SECONDS = 10.0


@pytest.fixture(scope="module")
def on_call_stack(tmp_path_factory):
    require_model()
    var = tmp_path_factory.mktemp("on-call-var")
    clinic = yaml.safe_load((REPO_ROOT / "clinic.yml").read_text(encoding="utf-8"))
    clinic["on_call"] = {
        "realert_minutes": 0.1,
        "max_rounds": 2,
        "contacts": [{"name": "Duty physio", "phone": DUTY}, {"name": "Clinic lead", "phone": LEAD}],
    }
    config = var / "clinic.yml"
    config.write_text(yaml.safe_dump(clinic), encoding="utf-8")
    with running_sms_stack(var, CLINIC_CONFIG=str(config)) as running:
        yield running


def test_the_on_call_sms_arrives_within_10_s_and_the_realert_fires_when_nobody_opens_the_case(on_call_stack):
    patient = "+4477009" + str(uuid.uuid4().int)[:5]
    red_flag = "since my needling this morning i cant catch my breath and my chest hurts"

    started = time.monotonic()
    on_call_stack.post(patient, red_flag)
    wait_until(lambda: on_call_stack.fake.bodies(DUTY), timeout=30)
    took = time.monotonic() - started

    [case] = on_call_stack.query(select(Escalation).where(Escalation.priority == Priority.urgent))
    [first] = on_call_stack.fake.bodies(DUTY)
    assert took <= WITHIN_SECONDS, f"the on-call text took {took:.1f} s"
    assert case.id[:8] in first and f"/staff/escalations/{case.id}" in first
    assert "breath" not in first and "chest" not in first and patient not in first
    assert on_call_stack.fake.bodies(LEAD) == []  # the second contact only when nobody opens it

    wait_until(lambda: on_call_stack.fake.bodies(LEAD), timeout=40)
    assert len(on_call_stack.fake.bodies(DUTY)) == 2  # the first contact is alerted again too
    assert "reminder" in on_call_stack.fake.bodies(LEAD)[0]
    rounds = on_call_stack.query(
        select(AuditEvent).where(AuditEvent.kind == AuditKind.on_call_alerted, AuditEvent.escalation_id == case.id)
        .order_by(AuditEvent.id)
    )
    assert [event.detail["round"] for event in rounds] == [0, 1]
    assert [c["name"] for c in rounds[1].detail["contacts"]] == ["Duty physio", "Clinic lead"]
    time.sleep(8)  # max_rounds 2: no third round
    assert len(on_call_stack.fake.bodies(DUTY)) == 2 and len(on_call_stack.fake.bodies(LEAD)) == 1


def test_the_on_call_contact_texting_back_acknowledges_the_case_and_the_realerts_stop(on_call_stack):
    patient = "+4477009" + str(uuid.uuid4().int)[:5]
    on_call_stack.post(patient, "since my needling this morning i cant catch my breath and my chest hurts")
    sender_id = on_call_stack.contact(patient).sender_id
    [case] = wait_until(lambda: on_call_stack.query(select(Escalation.id).where(Escalation.sender_id == sender_id)),
                        timeout=30)
    wait_until(lambda: any(case[:8] in body for body in on_call_stack.fake.bodies(DUTY)), timeout=30)

    replies = on_call_stack.text(DUTY, "ok calling her now")

    assert len(replies) == 1 and "marked as acknowledged by Duty physio" in replies[0] and case[:8] in replies[0]
    assert on_call_stack.contact(DUTY).sender_id not in on_call_stack.query(select(Escalation.sender_id))
    [ack] = on_call_stack.query(select(AuditEvent).where(
        AuditEvent.kind == AuditKind.on_call_acknowledged, AuditEvent.escalation_id == case))
    assert ack.actor == "Duty physio" and "calling" not in str(ack.detail)
    rounds = lambda: on_call_stack.query(  # noqa: E731
        select(AuditEvent.id).where(AuditEvent.kind == AuditKind.on_call_alerted, AuditEvent.escalation_id == case))
    sent = len(rounds())
    time.sleep(10)  # past the 6-second re-alert: no further round for the acknowledged case
    assert len(rounds()) == sent
