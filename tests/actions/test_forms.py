"""The contact form doesn't trap: a question is answered, typed answers count at every step.

The validation action (actions/forms.py) with the question test of data/contact_form.yml
(actions/faq.py). The rules that answer the question and resume the form are tested in
tests/stories/test_contact_form.yml.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import QuestionTest, form_rules, is_faq_question, question_test
from actions.forms import ValidateContactForm

DOMAIN = {"forms": {"contact_form": {"required_slots": ["contact_name", "contact_method", "contact_detail", "contact_consent"]}}}
FORM_SLOTS = ("contact_name", "contact_method", "contact_detail", "contact_consent")


def parsed(text: str, intent: str, confidence: float = 1.0) -> dict[str, Any]:
    return {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": []}


def form_tracker(step: str, text: str, intent: str, confidence: float = 1.0,
                 value: Any = None, filled: Optional[dict[str, Any]] = None) -> Tracker:
    """The tracker the form's validation receives: ``text`` just taken as the answer to ``step``."""
    latest = parsed(text, intent, confidence)
    slots = {name: None for name in FORM_SLOTS} | (filled or {}) | {"requested_slot": step}
    taken = text if value is None else value
    slots[step] = taken
    events = [
        {"event": "user", "text": text, "timestamp": 1.0, "parse_data": latest, "input_channel": "socketio"},
        {"event": "action", "name": "contact_form", "timestamp": 1.1},
        {"event": "slot", "name": "requested_slot", "value": step, "timestamp": 1.1},
        {"event": "slot", "name": step, "value": taken, "timestamp": 1.1},
    ]
    return Tracker("patient-1", slots, latest, events, False, None, {"name": "contact_form"}, "action_listen")


async def validate(tracker: Tracker) -> tuple[list[dict[str, Any]], list[Optional[str]]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateContactForm().run(dispatcher, tracker, DOMAIN)
    return events, [m.get("response") for m in dispatcher.messages]


def slot_values(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def rejected(events: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "action_execution_rejected" and e["name"] == "contact_form" for e in events)


# --- the question test -------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "how long does the relief last?", "how long does the relief last", "Does it hurt?", "does it hurt",
    "Side effects?", "will I bleed afterwards", "what's it cost", "is dry needling safe",
    "dry needling side effects for runners",
])
def test_questions_are_worded_as_questions(text):
    assert question_test().worded_as_question(text)


@pytest.mark.parametrize("text", [
    "Sam", "Will", "Will?", "Will Smith", "May Chen", "Hope Walker", "sam@example.com", "sam.o@example.co.uk",
    "07912 345678", "+44 7912 345678", "yes please", "ring me", "by email", "Sarah-Jane O'Neil", "",
])
def test_answers_are_not_worded_as_questions(text):
    assert not question_test().worded_as_question(text)


def test_an_faq_question_needs_the_models_reading_and_the_wording():
    test = question_test()
    assert is_faq_question(parsed("how long does the relief last?", "faq", 0.99), test)
    assert not is_faq_question(parsed("how long does the relief last?", "faq", test.min_confidence - 0.01), test)
    assert not is_faq_question(parsed("how long does the relief last?", "inform", 0.99), test)
    # The model reads "Will" as an FAQ question; it is a name all the same.
    assert not is_faq_question(parsed("Will", "faq", 0.99), test)


def test_the_test_is_read_from_the_data_file(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "question:\n  min_confidence: 0.5\n  min_words: 3\n  long_words: 9\n"
        "  question_words: [how]\n  auxiliaries: []\n  subjects: []\n", encoding="utf-8"
    )
    test = QuestionTest.from_dict(form_rules(rules)["question"])
    assert test.worded_as_question("how does it work")
    assert not test.worded_as_question("how long?")  # two words: under this file's min_words
    assert not test.worded_as_question("does it hurt")  # no auxiliaries listed


# --- a question at any step --------------------------------------------------------------------

@pytest.mark.parametrize("step", FORM_SLOTS)
async def test_a_question_at_any_step_rejects_the_form_and_undoes_the_slot(step):
    events, said = await validate(form_tracker(step, "how long does the relief last?", "faq", 0.98))
    assert rejected(events)
    assert slot_values(events) == {step: None}
    assert said == []  # no "Sorry, I didn't catch a name": the rules answer the question


async def test_resuming_after_the_answer_does_not_reject_again():
    # Back in the form after utter_faq: nothing new to validate, though the question is still the latest message.
    latest = parsed("how long does the relief last?", "faq", 0.98)
    events = [
        {"event": "user", "text": latest["text"], "timestamp": 1.0, "parse_data": latest},
        {"event": "bot", "text": "Relief ...", "timestamp": 1.1, "metadata": {"utter_action": "utter_faq/relief_duration"}},
        {"event": "action", "name": "contact_form", "timestamp": 1.2},
        {"event": "slot", "name": "requested_slot", "value": "contact_name", "timestamp": 1.2},
    ]
    slots = {name: None for name in FORM_SLOTS} | {"requested_slot": "contact_name"}
    tracker = Tracker("patient-1", slots, latest, events, False, None, {"name": "contact_form"}, "utter_faq")
    events_out, said = await validate(tracker)
    assert not rejected(events_out)
    assert said == []


@pytest.mark.parametrize("name", ["Will", "Sam", "May Chen"])
async def test_a_name_the_model_reads_as_a_question_is_still_a_name(name):
    events, said = await validate(form_tracker("contact_name", name, "faq", 0.95))
    assert not rejected(events)
    assert slot_values(events)["contact_name"] == name
    assert said == []


# --- typed answers at every step ---------------------------------------------------------------

@pytest.mark.parametrize("text,intent", [("yes", "affirm"), ("hello", "greet"), ("thanks", "thank")])
async def test_a_yes_or_a_greeting_at_the_name_step_is_not_taken_for_a_name(text, intent):
    events, said = await validate(form_tracker("contact_name", text, intent, 0.99))
    assert slot_values(events)["contact_name"] is None
    assert said == ["utter_invalid_contact_name"]


@pytest.mark.parametrize("text,intent,method", [
    ("phone", "inform", "phone"), ("ring me", "request_human", "phone"), ("text me", "inform", "phone"),
    ("can someone call me", "request_human", "phone"), ("email please", "inform", "email"),
    ("by email", "inform", "email"), ("Email", "inform", "email"),
])
async def test_a_contact_route_in_words(text, intent, method):
    events, said = await validate(form_tracker("contact_method", text, intent, filled={"contact_name": "Sam"}))
    assert slot_values(events)["contact_method"] == method
    assert slot_values(events).get("contact_detail") is None
    assert said == []


@pytest.mark.parametrize("text,method,detail", [
    ("sam@example.com", "email", "sam@example.com"), ("07912 345678", "phone", "+447912345678"),
])
async def test_the_detail_itself_at_the_route_step_gives_both(text, method, detail):
    # Both slots filled: the form goes straight on to consent.
    events, said = await validate(form_tracker("contact_method", text, "inform", filled={"contact_name": "Sam"}))
    values = slot_values(events)
    assert (values["contact_method"], values["contact_detail"]) == (method, detail)
    assert said == []


async def test_a_route_that_is_no_route_is_asked_again():
    events, said = await validate(form_tracker("contact_method", "whenever", "inform", filled={"contact_name": "Sam"}))
    assert slot_values(events)["contact_method"] is None
    assert said == ["utter_invalid_contact_method"]


async def test_a_yes_at_the_consent_step_is_consent():
    filled = {"contact_name": "Sam", "contact_method": "phone", "contact_detail": "+447912345678"}
    events, said = await validate(form_tracker("contact_consent", "yes please", "affirm", value=True, filled=filled))
    assert slot_values(events)["contact_consent"] is True
    assert said == []


@pytest.mark.parametrize("text,intent", [("Sam", "inform"), ("maybe later", "inform"), ("hi", "greet")])
async def test_anything_else_at_the_consent_step_asks_plainly_for_a_yes_or_no(text, intent):
    filled = {"contact_name": "Sam", "contact_method": "phone", "contact_detail": "+447912345678"}
    events, said = await validate(form_tracker("contact_consent", text, intent, filled=filled))
    assert slot_values(events)["contact_consent"] is None
    assert not rejected(events)
    assert said == ["utter_invalid_contact_consent"]
