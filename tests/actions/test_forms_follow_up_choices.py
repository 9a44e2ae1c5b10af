"""Follow-up offers ("Would you like to know ...?") carry Yes/No buttons, except by text and in the form.

The buttons are added by the Rasa server's response generator (bot/assistant/nlg.py) from
``utter_follow_up_choices`` (domain.yml), so they are there for the first answer
(``utter_faq``) and for a follow-up's follow-up (action_answer_follow_up) alike.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActiveLoop, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.assistant.messaging.replies import render_turn
from bot.assistant.nlg import ClinicNLG
from bot.core.clinic import load_clinic
from bot.core.knowledge import catalog
from bot.core.settings import REPO_ROOT

SMS = "clinic_sms"
YES_NO = ["/affirm", "/deny"]
OFFERING = sorted(name for name, answer in catalog.load().answers.items() if answer.follow_up)


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load([str(REPO_ROOT / "domain.yml"), str(REPO_ROOT / "data" / "responses")])


@pytest.fixture(scope="module")
def nlg(domain: Domain) -> ClinicNLG:
    return ClinicNLG(domain=domain, clinic=load_clinic(REPO_ROOT / "clinic.yml"))


def tracker(domain: Domain, loop: Optional[str] = None) -> DialogueStateTracker:
    parse = {"intent": {"name": "faq", "confidence": 1.0}, "entities": [], "text": "does it hurt?"}
    events: list[Any] = [UserUttered("does it hurt?", parse["intent"], [], parse)]
    if loop:
        events.insert(0, ActiveLoop(loop))
    return DialogueStateTracker.from_events("patient", events, slots=domain.slots)


def payloads(message: Optional[dict[str, Any]]) -> list[str]:
    assert message is not None
    return [button["payload"] for button in message.get("buttons") or []]


def test_every_answer_that_ends_with_an_offer_has_a_follow_up():
    # What the buttons below rest on: the knowledge base marks every offer (bot/core/knowledge/catalog.py checks it).
    assert len(OFFERING) >= 17


@pytest.mark.parametrize("name", OFFERING)
async def test_every_follow_up_offer_has_yes_no_buttons_on_the_web(nlg, domain, name):
    message = await nlg.generate(name, tracker(domain), "socketio")
    assert message["text"].rstrip().endswith("?")
    assert payloads(message) == YES_NO


async def test_rest_clients_get_the_buttons_too(nlg, domain):
    assert payloads(await nlg.generate("utter_faq/does_it_hurt", tracker(domain), "rest")) == YES_NO


async def test_by_text_the_offer_has_no_buttons_and_reads_as_a_question(nlg, domain):
    message = await nlg.generate("utter_faq/does_it_hurt", tracker(domain), SMS)
    assert payloads(message) == []
    turn = render_turn([message], limit=320)
    assert turn.choices == []  # no "Reply 1 for ..." line: the patient answers yes or no in words
    assert turn.parts[-1].rstrip().endswith("?")


async def test_no_buttons_while_the_contact_form_is_open(nlg, domain):
    # There a yes answers the form (consent at the last step), never the offer.
    assert payloads(await nlg.generate("utter_faq/does_it_hurt", tracker(domain, "contact_form"), "socketio")) == []


async def test_as_rasa_builds_it_before_loading_the_domain(domain):
    # Rasa's agent creates the generator with an empty domain and sets its responses later.
    late = ClinicNLG(clinic=load_clinic(REPO_ROOT / "clinic.yml"))
    late.responses = domain.responses
    assert payloads(await late.generate("utter_faq/does_it_hurt", tracker(domain), "socketio")) == YES_NO
    assert payloads(await late.generate("utter_faq/does_it_hurt", tracker(domain, "contact_form"), "socketio")) == []


async def test_responses_that_offer_nothing_get_no_buttons(nlg, domain):
    for name in ("utter_anything_else", "utter_goodbye", "utter_thank"):
        assert payloads(await nlg.generate(name, tracker(domain), "socketio")) == []


async def test_responses_with_their_own_buttons_keep_them(nlg, domain):
    assert payloads(await nlg.generate("utter_offer_handoff", tracker(domain), "socketio")) == YES_NO
    assert "/request_human" in payloads(await nlg.generate("utter_greet", tracker(domain), "socketio"))
