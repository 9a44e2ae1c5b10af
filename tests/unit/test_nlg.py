"""The Rasa server's own choice of what a patient reporting a problem reads (bot/assistant/nlg.py).

These texts come from the Rasa process, so they hold with the action server down: the
emergency text by class, 999/A&E or NHS 111 by the verdict's level of care, spoken to the
writer for someone else; the adverse-event text by class; the emergency line on every exit.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.assistant.nlg import EXIT_RESPONSES, ClinicNLG
from bot.core.clinic import load_clinic
from bot.core.settings import REPO_ROOT

EMERGENCY_CLASSES = [
    "breathing", "anaphylaxis", "stroke", "chest_pain", "collapse", "bleeding", "sepsis", "infection",
    "nerve_injury", "cauda_equina", "headache", "vision", "retained_needle",
]
ADVERSE_CLASSES = [
    "soreness", "bruising", "minor_bleeding", "tingling", "dizziness", "nausea", "fatigue", "headache",
    "swelling", "itching", "twitching", "emotional_reaction", "worse_pain", "needle_incident", "unplaced",
]
#: What the first sentence of each emergency text must speak of.
FIRST_LINE = {
    "breathing": "999", "anaphylaxis": "anaphylaxis", "stroke": "stroke", "chest_pain": "999",
    "collapse": "999", "bleeding": "Press firmly", "sepsis": "sepsis", "infection": "NHS 111",
    "nerve_injury": "NHS 111", "cauda_equina": "A&E", "headache": "999", "vision": "999",
    "retained_needle": "Don't try",
}
CLINIC = load_clinic(REPO_ROOT / "clinic.yml")


@pytest.fixture(scope="module")
def nlg() -> ClinicNLG:
    domain = Domain.load([str(REPO_ROOT / "domain.yml"), str(REPO_ROOT / "data" / "responses" / "safety.yml")])
    return ClinicNLG(domain=domain, clinic=CLINIC)


def tracker(safety: Optional[dict[str, Any]] = None, **slots: Any) -> DialogueStateTracker:
    domain = Domain.load(str(REPO_ROOT / "domain.yml"))
    parse = {"intent": {"name": "report_adverse_event", "confidence": 1.0}, "entities": [], "safety": safety or {}}
    events = [UserUttered("something happened", parse["intent"], [], parse)]
    events += [SlotSet(name, value) for name, value in slots.items()]
    return DialogueStateTracker.from_events("patient", events, slots=domain.slots)


async def say(nlg: ClinicNLG, name: str, state: DialogueStateTracker, channel: str = "socketio") -> str:
    message = await nlg.generate(name, state, channel)
    assert message is not None
    text = " ".join(message["text"].split())
    assert not re.search(r"\{[a-z_]+\}", text), f"unfilled placeholder in {text!r}"
    return text


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]


@pytest.mark.parametrize("kind", EMERGENCY_CLASSES)
async def test_each_emergency_class_opens_with_its_own_critical_line(nlg, kind):
    text = await say(nlg, "utter_adverse_event", tracker({"reason": "emergency", "red_flag_class": kind}))
    assert FIRST_LINE[kind] in first_sentence(text)
    assert CLINIC.emergency_number in text and CLINIC.phone in text
    assert "Sorry you're sore" not in text


@pytest.mark.parametrize("kind", EMERGENCY_CLASSES)
async def test_someone_elses_emergency_speaks_to_the_writer(nlg, kind):
    text = await say(nlg, "utter_adverse_event", tracker({"reason": "emergency", "red_flag_class": kind, "third_party": True}))
    assert "them" in text or "they" in text
    assert CLINIC.emergency_number in text


async def test_an_emergency_with_no_class_gets_the_general_999_text(nlg):
    text = await say(nlg, "utter_adverse_event", tracker({"reason": "emergency"}))
    assert first_sentence(text).startswith(f"Please call {CLINIC.emergency_number} now or go to A&E")


async def test_a_usual_111_class_marked_life_threatening_gets_999_first(nlg):
    text = await say(nlg, "utter_adverse_event", tracker({"reason": "emergency", "red_flag_class": "infection", "care": "999"}))
    assert CLINIC.emergency_number in first_sentence(text) and "A&E" in first_sentence(text)


async def test_a_headache_marked_urgent_not_life_threatening_gets_nhs_111_first(nlg):
    text = await say(nlg, "utter_adverse_event", tracker({"reason": "emergency", "red_flag_class": "headache", "care": "111"}))
    assert "NHS 111" in first_sentence(text)


async def test_another_language_falls_back_to_english_for_now(nlg):
    text = await say(nlg, "utter_adverse_event", tracker({"reason": "emergency", "red_flag_class": "stroke", "language": "pl"}))
    assert "FAST" in text


@pytest.mark.parametrize("kind", ADVERSE_CLASSES)
async def test_each_adverse_event_class_gets_its_own_text_with_the_red_flags(nlg, kind):
    text = await say(nlg, "utter_adverse_event", tracker({"reason": "adverse_event", "adverse_class": kind}))
    assert "Sorry you're sore" not in text
    assert CLINIC.emergency_number in text
    if kind != "needle_incident":
        assert "NHS 111" in text


async def test_expected_soreness_gets_aftercare_advice_and_an_unplaced_symptom_a_neutral_text(nlg):
    soreness = await say(nlg, "utter_adverse_event", tracker({"reason": "adverse_event", "adverse_class": "soreness"}))
    unplaced = await say(nlg, "utter_adverse_event", tracker({"reason": "adverse_event", "adverse_class": "unplaced"}))
    assert "two days" in soreness
    assert first_sentence(unplaced) == "Thank you for telling me."
    assert "priority" in unplaced


async def test_an_old_verdict_with_no_class_gets_the_neutral_text(nlg):
    text = await say(nlg, "utter_adverse_event", tracker({"reason": "adverse_event"}))
    assert first_sentence(text) == "Thank you for telling me."


@pytest.mark.parametrize("name", sorted(EXIT_RESPONSES))
async def test_every_way_out_after_an_emergency_opens_with_the_emergency_line(nlg, name):
    after = tracker({}, emergency=True, emergency_info={"red_flag_class": "breathing", "care": "999", "third_party": False})
    text = await say(nlg, name, after)
    assert first_sentence(text) == f"Please remember: call {CLINIC.emergency_number} now or go to A&E."


async def test_the_emergency_line_on_the_way_out_keeps_its_level_of_care_and_who_it_is_for(nlg):
    after = tracker({}, emergency=True, emergency_info={"red_flag_class": "infection", "care": "111", "third_party": True})
    text = await say(nlg, "utter_goodbye", after)
    assert text.startswith("Please remember: call NHS 111 for them now")


async def test_no_emergency_line_on_the_way_out_without_an_emergency(nlg):
    text = await say(nlg, "utter_goodbye", tracker({}))
    assert not text.startswith("Please remember")


async def test_the_emergency_text_for_held_chats_stays_fillable_from_clinic_facts_alone():
    # bot/assistant/channels/live_chats.py reads utter_red_flag_urgent and fills it with clinic facts only.
    from bot.assistant.channels.live_chats import urgent_guidance

    assert urgent_guidance(CLINIC).startswith(f"Please call {CLINIC.emergency_number} now")
