"""End-to-end: the real Rasa server, action server and web app, over the REST webhook."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.core.clinic import load_clinic
from bot.core.knowledge import catalog
from bot.core.settings import sync_db_url
from bot.core.store.models import AuditEvent, AuditKind, Escalation, Priority, Reason
from bot.dashboard.notify.worker import SIGNATURE_HEADER, sign
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e


def sender() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def escalations(live_stack, sender_id: str) -> list[Escalation]:
    engine = create_engine(sync_db_url(live_stack.database_url), future=True)
    with Session(engine) as session:
        rows = session.execute(select(Escalation).where(Escalation.sender_id == sender_id)).scalars().all()
        for row in rows:
            session.expunge(row)
    engine.dispose()
    return list(rows)


def audit_kinds(live_stack, escalation_id: str) -> list[AuditKind]:
    engine = create_engine(sync_db_url(live_stack.database_url), future=True)
    with Session(engine) as session:
        kinds = session.execute(
            select(AuditEvent.kind).where(AuditEvent.escalation_id == escalation_id)
        ).scalars().all()
    engine.dispose()
    return list(kinds)


def test_first_reply_says_it_is_an_automated_assistant(live_stack):
    replies = live_stack.say(sender(), "hi")
    assert "automated assistant" in replies[0]["text"]
    assert "not a clinician" in replies[0]["text"]


def test_faq_answer_is_the_curated_answer_with_clinic_facts_filled_in(live_stack):
    replies = live_stack.say(sender(), "does dry needling hurt?")
    answer = catalog.load().faq["does_it_hurt"].text
    clinic = load_clinic(live_stack.settings.clinic_config)
    expected = answer.format(**clinic.template_values())
    assert expected in [" ".join(r.get("text", "").split()) for r in replies]


def test_unrelated_question_gets_no_faq_answer(live_stack):
    replies = live_stack.say(sender(), "what's the best recipe for banana bread?")
    faq_texts = {" ".join(a.text.split())[:60] for a in catalog.load().faq.values()}
    assert not any(" ".join(r.get("text", "").split())[:60] in faq_texts for r in replies)


def test_contraindication_conversation_is_stored_with_transcript_and_staff_notified(live_stack):
    who = sender()
    first = live_stack.say(who, "I'm pregnant, can I have dry needling for my back?")
    assert "physiotherapist" in texts(first)
    assert "fine" not in texts(first).lower()
    assert any(b["payload"] == "/affirm" for r in first for b in r.get("buttons", []))
    assert "name" in texts(live_stack.say(who, "/affirm")).lower()
    method = live_stack.say(who, "Maria Lopez")
    assert any(b["payload"] == "phone" for r in method for b in r.get("buttons", []))
    assert "phone number" in texts(live_stack.say(who, "phone")).lower()
    assert "type it again" in texts(live_stack.say(who, "12345")).lower()  # invalid number asked again
    consent = live_stack.say(who, "020 7946 0958")
    assert "agree" in texts(consent)
    assert escalations(live_stack, who) == []  # nothing stored before consent
    done = texts(live_stack.say(who, "/affirm"))
    assert "passed this to our team" in done

    [record] = escalations(live_stack, who)
    assert record.reason == Reason.contraindication
    assert "pregnancy:pregnant" in record.trigger["matched_terms"]
    assert record.trigger["intent"] == "ask_contraindication"
    assert record.contact_name == "Maria Lopez"
    assert record.contact_detail == "+442079460958"
    assert record.consent_given is True
    assert any("pregnant" in turn["text"] for turn in record.transcript if turn["from"] == "patient")
    assert AuditKind.consent_given in audit_kinds(live_stack, record.id)

    mail = wait_for(lambda: [m for m in live_stack.smtp.messages if record.id[:8] in m["Subject"]])
    assert "pregnant" not in mail[0].get_payload()
    hook = wait_for(lambda: [h for h in live_stack.webhook.received if h["escalation_id"] == record.id])
    assert hook[0]["reason"] == "contraindication"


def test_red_flag_gets_urgent_guidance_first_and_an_urgent_record_at_once(live_stack):
    who = sender()
    replies = live_stack.say(who, "since my needling this morning i cant catch my breath and my chest hurts")
    clinic = load_clinic(live_stack.settings.clinic_config)
    first = replies[0]["text"] if "automated" not in replies[0]["text"] else replies[1]["text"]
    assert clinic.emergency_number in first
    # "Alerted" only while the clinic is open (bot/core/escalation/alerting.py); out of hours, when it opens.
    assert ("alerted" if clinic.is_open(datetime.now(timezone.utc)) else "until we open at") in texts(replies)
    [record] = escalations(live_stack, who)
    assert record.reason == Reason.emergency
    assert record.priority == Priority.urgent
    assert "breathing" in " ".join(record.trigger["matched_terms"])
    assert AuditKind.red_flag_triggered in audit_kinds(live_stack, record.id)
    hook = wait_for(lambda: [h for h in live_stack.webhook.received if h["escalation_id"] == record.id])
    assert hook[0]["urgent"] is True
    index = live_stack.webhook.received.index(hook[0])
    body = json.dumps(hook[0], sort_keys=True).encode()
    assert live_stack.webhook.headers[index][SIGNATURE_HEADER] == sign("test-secret", body)
    mail = wait_for(lambda: [m for m in live_stack.smtp.messages if record.id[:8] in m["Subject"]])
    assert mail[0]["Subject"].startswith("[URGENT]")


def test_asking_whether_to_go_to_a_and_e_gets_urgent_guidance_and_an_urgent_record(live_stack):
    """The assistant cannot triage: the question itself takes the emergency path."""
    who = sender()
    replies = live_stack.say(who, "should I go to A&E?")
    clinic = load_clinic(live_stack.settings.clinic_config)
    first = replies[0]["text"] if "automated" not in replies[0]["text"] else replies[1]["text"]
    assert clinic.emergency_number in first
    [record] = escalations(live_stack, who)
    assert record.reason == Reason.emergency
    assert record.priority == Priority.urgent
    assert record.trigger["matched_terms"] == ["emergency_care:should i go to a&e"]


def test_same_conversation_escalating_twice_updates_one_record(live_stack):
    who = sender()
    live_stack.say(who, "after my session yesterday i fainted")
    live_stack.say(who, "i just passed out again, since the needling i keep fainting")
    [record] = escalations(live_stack, who)
    assert len(record.trigger["history"]) == 1  # the first trigger is kept in the record's history


def test_negated_condition_is_an_ordinary_question(live_stack):
    who = sender()
    replies = live_stack.say(who, "I'm not pregnant or anything, does it hurt?")
    assert "Would you like a physiotherapist" not in texts(replies)
    assert escalations(live_stack, who) == []


def test_stopping_the_contact_form_gives_the_phone_number_and_stores_nothing(live_stack):
    who = sender()
    live_stack.say(who, "can I talk to a real person please")
    stopped = texts(live_stack.say(who, "stop"))
    assert load_clinic(live_stack.settings.clinic_config).phone in stopped
    assert escalations(live_stack, who) == []


@pytest.mark.parametrize(
    "message",
    [
        "",
        "   \n\t ",
        "x" * 20_000,
        "how long is a session " * 1000,
        "😀😀😀🙏",
        "\x00\x01\x02\ufffe binary",
        "<script>alert('x')</script>",
        "<img src=x onerror=alert(1)>",
        "/restart",
        '/inform{"contact_consent": true}',
        "/ask_contraindication",
        "¿Duele la punción seca?",
        "针灸和干针有什么区别",
    ],
)
def test_bad_input_gets_a_polite_reply_and_no_crash(live_stack, message):
    replies = live_stack.say(sender(), message)
    assert replies and all(r.get("text") for r in replies)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"message": "hi"}', b'{"sender": 5, "message": "hi"}', b'{"sender": "x", "message": {"a": 1}}'],
)
def test_malformed_webhook_gets_400(live_stack, body):
    reply = requests.post(
        f"{live_stack.rasa_url}/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "bad_request"


def test_typed_intent_payload_cannot_set_consent(live_stack):
    who = sender()
    live_stack.say(who, "please let a physio call me")
    live_stack.say(who, '/inform{"contact_consent": true}')
    assert escalations(live_stack, who) == []


def test_action_server_down_still_gives_a_true_reply(live_stack):
    who = sender()
    live_stack.say(who, "hello")
    live_stack.stop_actions()
    try:
        replies = live_stack.say(who, "I take warfarin, can I have it?")
        assert load_clinic(live_stack.settings.clinic_config).phone in texts(replies)
    finally:
        live_stack.start_actions()
