"""First fallback stage: "did you mean ...?" buttons from the model's ranking."""

from __future__ import annotations

from actions.fallback import suggestions


def message(ranking, faq_ranking=()):
    return {
        "intent_ranking": [{"name": name, "confidence": c} for name, c in ranking],
        "response_selector": {"faq": {"ranking": [{"intent_response_key": f"faq/{t}"} for t in faq_ranking]}},
    }


def test_faq_candidates_become_question_buttons_the_model_maps_back():
    buttons = suggestions(message([("nlu_fallback", 0.6), ("faq", 0.5)], ["does_it_hurt", "side_effects"]))
    assert buttons == [
        {"title": "Does it hurt?", "payload": "Does it hurt?"},
        {"title": "What are the side effects?", "payload": "What are the side effects?"},
    ]


def test_staff_bound_candidate_is_offered_in_words():
    buttons = suggestions(message([("nlu_fallback", 0.6), ("ask_contraindication", 0.4), ("request_human", 0.2)]))
    assert buttons[0]["payload"] == "Who shouldn't have dry needling?"
    assert buttons[1]["payload"] == "/request_human"


def test_no_plausible_candidate_offers_popular_topics():
    buttons = suggestions(message([("nlu_fallback", 0.6), ("out_of_scope", 0.3), ("greet", 0.1)]))
    assert [b["title"] for b in buttons] == ["What is dry needling?", "Does it hurt?", "Is it safe?"]


def test_at_most_three_suggestions():
    ranking = [("faq", 0.5), ("book_appointment", 0.3), ("clinic_info", 0.2)]
    assert len(suggestions(message(ranking, ["a_topic", "does_it_hurt", "safety"]))) <= 3
