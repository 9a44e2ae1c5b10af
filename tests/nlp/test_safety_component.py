"""The SafetyScreen NLU component re-routes, boosts and (narrowly) demotes intents."""

from __future__ import annotations

import pytest
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.assistant.nlp import pipeline
from bot.assistant.nlp.safety_component import SafetyScreen


@pytest.fixture(scope="module")
def nlp():
    return pipeline.build(pipeline.load_patterns())


def parse(nlp, text: str, ranking: list[tuple[str, float]]) -> Message:
    message = Message(data={TEXT: text})
    message.set(SPACY_DOCS[TEXT], nlp(text))
    intents = [{"name": name, "confidence": c} for name, c in ranking]
    message.set(INTENT, intents[0])
    message.set(INTENT_RANKING_KEY, intents)
    SafetyScreen().process([message])
    return message


def test_contraindication_the_model_missed_is_rerouted_with_full_confidence(nlp):
    message = parse(nlp, "does it hurt? I'm on warfarin", [("faq", 0.9), ("ask_contraindication", 0.1)])
    assert message.get(INTENT) == {"name": "ask_contraindication", "confidence": 1.0}
    assert message.get("safety")["rerouted"] is True
    assert message.get("safety")["model_intent"]["name"] == "faq"


def test_unsure_model_is_boosted_when_the_screen_has_evidence(nlp):
    message = parse(nlp, "on plavix, is needling safe for my back", [("ask_contraindication", 0.45), ("faq", 0.4)])
    assert message.get(INTENT)["confidence"] == 1.0
    assert message.get("safety")["rerouted"] is False


def test_red_flag_beats_a_contraindication(nlp):
    message = parse(nlp, "I'm on warfarin and since the needling I can't breathe", [("ask_contraindication", 0.9)])
    assert message.get(INTENT)["name"] == "report_adverse_event"
    assert message.get("safety")["reason"] == "emergency"


def test_ruled_out_condition_is_answered_as_the_question(nlp):
    message = parse(nlp, "I'm not pregnant, does it hurt?", [("ask_contraindication", 0.7), ("faq", 0.3)])
    assert message.get(INTENT)["name"] == "faq"
    assert message.get("safety")["demoted"] is True


def test_treatment_seeking_question_is_not_an_adverse_event(nlp):
    message = parse(nlp, "i get tension headaches, would needling help?", [("report_adverse_event", 0.9), ("faq", 0.1)])
    assert message.get(INTENT)["name"] == "faq"


def test_prolonged_soreness_after_treatment_stays_staff_bound(nlp):
    message = parse(nlp, "still sore a week after my session", [("report_adverse_event", 0.9), ("faq", 0.1)])
    assert message.get(INTENT)["name"] == "report_adverse_event"


def test_button_payloads_are_not_screened(nlp):
    message = parse(nlp, "/affirm", [("affirm", 1.0)])
    assert message.get("safety") is None


def test_rerouted_message_cannot_look_ambiguous_to_the_fallback(nlp):
    message = parse(nlp, "I'm on warfarin, how many sessions?", [("faq", 0.99), ("ask_contraindication", 0.01)])
    ranking = message.get(INTENT_RANKING_KEY)
    assert ranking[0]["confidence"] - ranking[1]["confidence"] == 1.0
    assert message.get("safety")["model_ranking"][0]["name"] == "faq"


def test_mild_expected_soreness_is_answered_by_the_faq(nlp):
    message = parse(nlp, "bit sore today after yesterday's needling, is that normal?", [("report_adverse_event", 0.8), ("faq", 0.2)])
    assert message.get(INTENT)["name"] == "faq"
    assert message.get("safety")["demoted"] is True


def test_ruled_out_terms_with_nothing_reported_are_not_an_adverse_event(nlp):
    message = parse(nlp, "no bleeding problems and im not on warfarin. what do i do after?", [("report_adverse_event", 0.6), ("faq", 0.4)])
    assert message.get(INTENT)["name"] == "faq"


def test_a_red_flag_in_an_if_clause_is_a_question(nlp):
    message = parse(nlp, "what should i do if i get chest pain during the session?", [("report_adverse_event", 0.7), ("faq", 0.3)])
    assert message.get(INTENT)["name"] == "faq"
    message = parse(nlp, "i get chest pain since the session, what should i do?", [("faq", 0.7), ("report_adverse_event", 0.3)])
    assert message.get(INTENT)["name"] == "report_adverse_event"


@pytest.mark.parametrize(
    "text, model, expected",
    [
        # A general medical question the model is sure is unrelated: the out-of-scope answer (GP, pharmacist).
        ("how do i get rid of a cold sore", ("out_of_scope", 0.8), "out_of_scope"),
        # Any link to treatment, an unsure model, or a medicine keeps the staff route.
        ("i have a cold sore, can i still have my needling?", ("out_of_scope", 0.8), "ask_contraindication"),
        ("how do i get rid of a cold sore", ("out_of_scope", 0.3), "ask_contraindication"),
        ("how much warfarin should i take", ("out_of_scope", 0.9), "ask_contraindication"),
        ("i'm pregnant", ("ask_contraindication", 0.9), "ask_contraindication"),
    ],
)
def test_unrelated_health_questions_stay_out_of_scope(nlp, text, model, expected):
    name, confidence = model
    message = parse(nlp, text, [(name, confidence), ("faq", round(1 - confidence, 2))])
    assert message.get(INTENT)["name"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "i have a mechanical heart valve",
        "still breastfeeding my 6 month old, can i get my neck done",
        "my wife has epilepsy, could she try it",
    ],
)
def test_statements_and_treatment_questions_reach_staff_even_if_the_model_says_unrelated(nlp, text):
    message = parse(nlp, text, [("out_of_scope", 0.9), ("faq", 0.1)])
    assert message.get(INTENT)["name"] == "ask_contraindication"


def test_an_if_clause_about_a_red_flag_is_not_a_request_for_a_person(nlp):
    message = parse(nlp, "what would you do if someone passed out during a session?", [("request_human", 0.6), ("faq", 0.4)])
    assert message.get(INTENT)["name"] == "faq"
    message = parse(nlp, "if i pass out can someone call me back?", [("request_human", 0.6), ("faq", 0.4)])
    assert message.get(INTENT)["name"] == "request_human"


def test_faq_answer_is_withheld_from_a_question_about_another_treatment(nlp):
    message = parse(nlp, "does cupping hurt much", [("faq", 0.97), ("out_of_scope", 0.02)])
    assert message.get(INTENT) == {"name": "out_of_scope", "confidence": 1.0}
    # The fallback's ambiguity check must not turn it into "did you mean ...?".
    assert [r["confidence"] for r in message.get(INTENT_RANKING_KEY)[1:]] == [0.0]
    assert message.get("safety")["other_subject"] == "manual_therapy"
    assert message.get("safety")["model_ranking"][0]["name"] == "faq"


def test_faq_answer_stays_when_another_treatment_is_compared_with_needling(nlp):
    message = parse(nlp, "is dry needling better than a sports massage", [("faq", 0.9), ("out_of_scope", 0.1)])
    assert message.get(INTENT)["name"] == "faq"
    assert "other_subject" not in message.get("safety")


def test_staff_routing_comes_before_the_other_treatment_check(nlp):
    message = parse(nlp, "I'm on warfarin, does a massage hurt", [("faq", 0.9), ("out_of_scope", 0.1)])
    assert message.get(INTENT)["name"] == "ask_contraindication"


def test_the_screens_contraindication_is_not_outranked_by_a_model_guess_of_an_adverse_event(nlp):
    # Needle phobia with a fainting history: before, the model's report_adverse_event won and
    # the patient got post-treatment soreness advice.
    text = "I'm terrified of needles and I fainted at my last blood test, is dry needling ok for me?"
    message = parse(nlp, text, [("report_adverse_event", 0.7), ("ask_contraindication", 0.3)])
    assert message.get(INTENT)["name"] == "ask_contraindication"
    assert message.get("safety")["reason"] == "contraindication"


def test_the_parse_data_carries_the_verdict_the_actions_read(nlp):
    message = parse(nlp, "since my session this morning i cant catch my breath", [("faq", 0.6), ("report_adverse_event", 0.4)])
    safety = message.get("safety")
    assert safety["reason"] == safety["screen_reason"] == "emergency" and safety["priority"] == "urgent"
    assert safety["rationale"] and any(e["gives_reason"] and e["contexts"] for e in safety["evidence"])
    assert safety["model_intent"]["name"] == "faq" and safety["rerouted"] is True


def test_the_model_alone_can_still_route_to_staff_when_the_screen_makes_no_judgement(nlp):
    message = parse(nlp, "hi there, about my situation", [("request_human", 0.8), ("faq", 0.2)])
    assert message.get(INTENT)["name"] == "request_human"
    assert message.get("safety")["reason"] == "human_request" and message.get("safety")["screen_reason"] is None


def test_a_model_routed_adverse_event_with_an_unlinked_red_flag_gets_urgent_guidance(nlp):
    message = parse(nlp, "got a fever and my back is red", [("report_adverse_event", 0.8), ("faq", 0.2)])
    assert message.get(INTENT)["name"] == "report_adverse_event"
    assert message.get("safety")["reason"] == "emergency"


def test_a_staff_guess_is_only_overruled_by_findings_that_would_explain_it(nlp):
    # The child is judged "not a question about treating a child", which says nothing about
    # an after-effect: the model's adverse-event guess stands.
    message = parse(nlp, "my daughter has been really off since her needling", [("report_adverse_event", 0.6), ("faq", 0.4)])
    assert message.get(INTENT)["name"] == "report_adverse_event"
    # The same judgement does overrule a contraindication guess.
    message = parse(nlp, "my daughter told me about you, where do i park?", [("ask_contraindication", 0.6), ("clinic_info", 0.4)])
    assert message.get(INTENT)["name"] == "clinic_info"
