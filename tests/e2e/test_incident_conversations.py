"""End-to-end: what a patient reporting a problem after treatment reads, and what the clinic keeps (issue 21).

Through the real Rasa server, action server and store, over the REST webhook:

* per emergency class: the first reply is the class's text for the screen's verdict (the
  one the Rasa server's NLG picks, bot/assistant/nlg.py), an urgent escalation is stored at once, no
  contact form follows, and every way out (no, goodbye, stop) repeats the emergency line;
* per adverse-event message: a class-specific (never "Sorry you're sore") first reply with
  the emergency number, a high-priority record at once, and the offer; declining keeps the
  record and notes the decision on it.
"""

from __future__ import annotations

import json
import uuid

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine, select

from bot.assistant.nlg import ClinicNLG
from bot.core.clinic import load_clinic
from bot.core.settings import REPO_ROOT, sync_db_url
from bot.core.store.models import AuditKind, Priority, Reason
from tests.e2e.test_rest_conversation import audit_kinds, escalations, texts
from tests.support.tracker import EVENTS

pytestmark = pytest.mark.e2e

#: One message per emergency class of the red-flag catalogue.
EMERGENCIES = {
    "breathing": "since my needling this morning i cant catch my breath",
    "chest_pain": "I've had crushing chest pain since the needling session this morning",
    "stroke": "since the dry needling in my neck my face is drooping on one side and my speech is slurred",
    "bleeding": "the needle site on my back won't stop bleeding, it's soaking through the towel",
    "anaphylaxis": "my lips and tongue are swelling up since the needles, i think it's an allergic reaction",
    "collapse": "I fainted and collapsed after the dry needling session",
    "sepsis": "since the needling I have a high fever and my skin is blotchy and I feel very unwell, could it be sepsis",
}
EXITS = {"deny": "no", "goodbye": "bye", "stop": "stop"}


def sender(kind: str) -> str:
    return f"incident-{kind}-{uuid.uuid4().hex[:10]}"


def latest_verdict(live_stack, who: str) -> dict:
    engine = create_engine(sync_db_url(live_stack.settings.tracker_store_url), future=True)
    with engine.connect() as connection:
        rows = connection.execute(
            select(EVENTS.c.data).where(EVENTS.c.sender_id == who, EVENTS.c.type_name == "user").order_by(EVENTS.c.id)
        ).scalars().all()
    engine.dispose()
    return (json.loads(rows[-1]).get("parse_data") or {}).get("safety") or {}


async def expected_text(live_stack, verdict: dict) -> str:
    """What the Rasa server's NLG writes for this verdict."""
    domain = Domain.load([str(REPO_ROOT / "domain.yml"), str(REPO_ROOT / "data" / "responses" / "safety.yml")])
    clinic = load_clinic(live_stack.settings.clinic_config)
    parse = {"intent": {"name": "report_adverse_event", "confidence": 1.0}, "entities": [], "safety": verdict}
    tracker = DialogueStateTracker.from_events("x", [UserUttered("x", parse["intent"], [], parse)], slots=domain.slots)
    message = await ClinicNLG(domain=domain, clinic=clinic).generate("utter_adverse_event", tracker, "rest")
    return " ".join(message["text"].split())


@pytest.mark.parametrize("kind", sorted(EMERGENCIES))
@pytest.mark.parametrize("way_out", sorted(EXITS))
async def test_an_emergency_is_answered_by_class_recorded_at_once_and_every_way_out_repeats_the_line(
    live_stack, kind, way_out
):
    clinic = load_clinic(live_stack.settings.clinic_config)
    who = sender(kind)
    live_stack.say(who, "hi")
    replies = live_stack.say(who, EMERGENCIES[kind])
    verdict = latest_verdict(live_stack, who)
    assert verdict.get("reason") == "emergency", f"the screen did not route the {kind} message as an emergency"

    first = " ".join(replies[0]["text"].split())
    assert first == await expected_text(live_stack, verdict)
    if verdict.get("red_flag_class"):
        assert verdict["red_flag_class"] == kind
    assert "what name" not in texts(replies).lower() and not any(r.get("buttons") for r in replies)
    [record] = escalations(live_stack, who)
    assert (record.reason, record.priority) == (Reason.emergency, Priority.urgent)

    goodbye = texts(live_stack.say(who, EXITS[way_out]))
    assert goodbye.startswith("Please remember: call") and clinic.emergency_number in goodbye.split("\n")[0] or (
        goodbye.startswith("Please remember: call NHS 111")
    )
    assert "what name" not in goodbye.lower()
    [still] = escalations(live_stack, who)
    assert still.id == record.id


#: Adverse events that are not emergencies, with what their first reply must say.
ADVERSE = {
    "soreness": ("my arm is really sore and aching since the dry needling yesterday", "two days"),
    "bruising": ("I have a big bruise where the needle went in yesterday", "bruise"),
    "tingling": ("since the needling session my fingers keep tingling", "Thank you for telling me"),
}


@pytest.mark.parametrize("kind", sorted(ADVERSE))
@pytest.mark.parametrize("then", ["decline", "abandon"])
async def test_an_adverse_event_gets_its_class_text_a_high_record_at_once_and_a_decision_noted_on_it(
    live_stack, kind, then
):
    clinic = load_clinic(live_stack.settings.clinic_config)
    who = sender(kind)
    text, says = ADVERSE[kind]
    replies = live_stack.say(who, text)
    verdict = latest_verdict(live_stack, who)
    assert verdict.get("reason") == "adverse_event", f"the screen did not route the {kind} message as an adverse event"
    first = " ".join(replies[0]["text"].split()) if "automated" not in replies[0]["text"] else " ".join(replies[1]["text"].split())
    assert first == await expected_text(live_stack, verdict)
    assert says in first and "Sorry you're sore" not in first and clinic.emergency_number in first
    assert any(b["payload"] == "/deny" for r in replies for b in r.get("buttons", []))
    [record] = escalations(live_stack, who)
    assert (record.reason, record.priority, record.consent_given) == (Reason.adverse_event, Priority.high, None)

    if then == "decline":
        assert clinic.phone in texts(live_stack.say(who, "/deny"))
    [record] = escalations(live_stack, who)
    assert record.consent_given is (False if then == "decline" else None)
    assert (AuditKind.consent_declined in audit_kinds(live_stack, record.id)) is (then == "decline")


async def test_an_adverse_event_with_consent_adds_the_contact_to_the_same_record(live_stack):
    who = sender("tingling-accept")
    live_stack.say(who, ADVERSE["tingling"][0])
    [first] = escalations(live_stack, who)
    live_stack.say(who, "/affirm")
    live_stack.say(who, "Maria Lopez")
    live_stack.say(who, "phone")
    live_stack.say(who, "020 7946 0000")
    live_stack.say(who, "/affirm")
    [record] = escalations(live_stack, who)
    assert record.id == first.id
    assert (record.consent_given, record.contact_name, record.priority) == (True, "Maria Lopez", Priority.high)
