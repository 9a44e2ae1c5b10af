"""End-to-end: the real Rasa server, action server and web app, texted through the SMS channel.

Twilio is the local fake (:mod:`tests.support.fake_twilio`): patient texts are posted to
the Rasa server's ``/webhooks/twilio/webhook`` signed with ``RequestValidator`` as Twilio
signs them, and every reply the assistant sends is read back from the fake's record of
what it would have delivered.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from bot.core.clinic import load_clinic
from bot.core.knowledge import catalog
from bot.core.store.models import Escalation, Priority, Reason, SmsContact, SmsOutbound, SmsOutboundStatus
from tests.conftest import require_model
from tests.support.fake_twilio import inbound, signed_post, wait_until
from tests.support.sms_stack import running_sms_stack

pytestmark = pytest.mark.e2e
MARKER = re.compile(r"^\((\d+)/(\d+)\) ")


@pytest.fixture(scope="module")
def sms_stack(tmp_path_factory):
    require_model()
    with running_sms_stack(tmp_path_factory.mktemp("sms-var")) as running:
        yield running


USED: list[str] = []


def number() -> str:
    USED.append("+4477009" + str(uuid.uuid4().int)[:5])
    return USED[-1]


def joined(parts: list[str]) -> str:
    return " ".join(MARKER.sub("", part) for part in parts)


def test_a_faq_conversation_by_text_with_numbered_choices(sms_stack):
    patient = number()
    clinic = load_clinic(sms_stack.stack.settings.clinic_config)

    first = sms_stack.text(patient, "hi")

    opening = joined(first)
    assert "automated assistant" in opening and "not a secure channel" in opening
    assert 'Reply 1 for "What is it?"' in opening and "/request_human" not in opening
    answer = sms_stack.text(patient, "2")  # "Does it hurt?": its one-text version first
    short = catalog.load().faq["does_it_hurt"].short.format(**clinic.template_values())
    assert f"{short} Reply MORE for the full answer." in answer
    full = sms_stack.text(patient, "MORE")
    expected = " ".join(catalog.load().faq["does_it_hurt"].text.format(**clinic.template_values()).split())
    assert expected in joined(full)
    assert all(len(part) <= 320 for part in first + answer + full)
    contact = sms_stack.contact(patient)
    assert contact.sender_id.startswith("sms-")


def test_the_longest_answer_arrives_in_marked_parts_in_order(sms_stack):
    patient = number()
    sms_stack.text(patient, "hello")
    assert sms_stack.text(patient, "3")[-1].endswith("Reply MORE for the full answer.")  # "Is it safe?"
    parts = sms_stack.text(patient, "tell me more")  # the longest curated answer in full
    clinic = load_clinic(sms_stack.stack.settings.clinic_config)
    expected = " ".join(catalog.load().faq["safety"].text.format(**clinic.template_values()).split())

    answer_parts = [part for part in parts if MARKER.match(part)]
    total = int(MARKER.match(answer_parts[0]).group(2))
    assert [MARKER.match(part).group(1) for part in answer_parts] == [str(i) for i in range(1, total + 1)]
    assert all(len(part) <= 320 for part in answer_parts)
    assert expected in joined(answer_parts)
    rows = sms_stack.query(select(SmsOutbound).where(SmsOutbound.sender_id == sms_stack.contact(patient).sender_id))
    assert [row.status for row in rows] == [SmsOutboundStatus.sent] * len(rows)


def test_an_escalation_by_text_records_the_channel_and_the_senders_number(sms_stack):
    patient = number()
    offer = joined(sms_stack.text(patient, "I'm pregnant, can I have dry needling for my back?"))
    assert "Would you like a physiotherapist" in offer and 'Reply 1 for "Yes, please"' in offer
    assert "name" in joined(sms_stack.text(patient, "1")).lower()
    method = joined(sms_stack.text(patient, "Maria Lopez"))
    assert '"Reply by text"' in method
    confirm = joined(sms_stack.text(patient, "1"))  # Phone call
    assert f"ending {patient[-4:]}" in confirm and patient not in confirm
    consent = joined(sms_stack.text(patient, "yes"))
    assert "agree" in consent
    done = joined(sms_stack.text(patient, "1"))
    assert "passed this to our team" in done

    sender_id = sms_stack.contact(patient).sender_id
    [record] = sms_stack.query(select(Escalation).where(Escalation.sender_id == sender_id))
    assert record.channel == "sms"
    assert record.reason == Reason.contraindication
    assert record.contact_method == "phone" and record.contact_detail == patient
    assert record.consent_given is True


def test_reply_by_text_is_a_contact_route(sms_stack):
    patient = number()
    sms_stack.text(patient, "can I talk to a real person please")
    sms_stack.text(patient, "Sam Taylor")
    done = joined(sms_stack.text(patient, "Reply by text"))
    assert "agree" in done
    saved = joined(sms_stack.text(patient, "yes"))
    assert "reply by text to this number" in saved
    [record] = sms_stack.query(
        select(Escalation).where(Escalation.sender_id == sms_stack.contact(patient).sender_id)
    )
    assert record.contact_method == "chat" and record.channel == "sms"


def test_a_red_flag_by_text_is_an_urgent_escalation_on_the_sms_channel(sms_stack):
    patient = number()
    replies = joined(sms_stack.text(patient, "since my needling this morning i cant catch my breath and my chest hurts"))
    clinic = load_clinic(sms_stack.stack.settings.clinic_config)
    assert clinic.emergency_number in replies
    # "Alerted" only while the clinic is open (bot/core/escalation/alerting.py); out of hours, when it opens.
    assert ("alerted" if clinic.is_open(datetime.now(timezone.utc)) else "until we open at") in replies
    [record] = sms_stack.query(select(Escalation).where(Escalation.sender_id == sms_stack.contact(patient).sender_id))
    assert record.reason == Reason.emergency and record.priority == Priority.urgent and record.channel == "sms"


def test_stop_then_nothing_is_sent_start_resubscribes_and_help_answers(sms_stack):
    patient = number()
    sms_stack.text(patient, "hi")
    assert "START" in joined(sms_stack.text(patient, "STOP"))
    before = len(sms_stack.fake.bodies(patient))
    assert signed_post(sms_stack.webhook, inbound(patient, "does it hurt?")).status_code == 200
    with pytest.raises(AssertionError):
        wait_until(lambda: len(sms_stack.fake.bodies(patient)) > before, timeout=4)
    assert "subscribed again" in joined(sms_stack.text(patient, "START"))
    help_text = joined(sms_stack.text(patient, "HELP"))
    clinic = load_clinic(sms_stack.stack.settings.clinic_config)
    assert clinic.name in help_text and clinic.phone in help_text and "STOP" in help_text


def test_a_picture_alone_gets_i_can_only_read_text(sms_stack):
    patient = number()
    assert "I can only read text here" in joined(sms_stack.text(patient, "", media=1))


def test_a_failed_send_is_retried_and_recorded(sms_stack):
    patient = number()
    sms_stack.fake.fail_next(1, status=500)
    replies = sms_stack.text(patient, "what is dry needling?")
    assert replies
    rows = sms_stack.query(select(SmsOutbound).where(SmsOutbound.sender_id == sms_stack.contact(patient).sender_id))
    assert rows[0].attempts == 2 and rows[0].status == SmsOutboundStatus.sent
    assert "HTTP 500" in rows[0].last_error


def test_an_unsigned_text_is_refused_by_the_real_server(sms_stack):
    patient = number()
    reply = signed_post(sms_stack.webhook, inbound(patient, "hello"), signature=None)
    assert reply.status_code == 403
    assert sms_stack.query(select(SmsContact).where(SmsContact.address == patient)) == []


def test_whatsapp_texts_are_answered_on_whatsapp(sms_stack):
    patient = "whatsapp:" + number()
    replies = joined(sms_stack.text(patient, "hi"))
    assert "automated assistant" in replies
    assert {sent.sender for sent in sms_stack.fake.sent if sent.to == patient} == {"whatsapp:+15005550007"}
    assert sms_stack.contact(patient).kind == "whatsapp"


def test_no_patient_number_reaches_any_log_line_or_url(sms_stack):
    """Last: every number texted in this module, in any notation, is absent from every process's log."""
    logs = "\n".join(path.read_text(errors="replace") for path in (sms_stack.stack.log_dir).glob("*"))
    assert logs, "no logs were written"
    for used in USED:
        digits = used.split("+")[-1]
        assert digits not in logs and digits[-9:] not in logs, "a patient number reached a log"
    assert "whatsapp:+" not in logs
