"""The evaluation figures `make eval` prints are computed the way docs/benchmarks.md says."""

from evaluation.nlu import Example, Prediction, report


def _prediction(text, truth, intent, key=None):
    return Prediction(example=Example(text=text, intent=truth), intent=intent, response_key=key, confidence=0.9)


def test_report_counts_rejection_faq_leaks_response_selection_and_staff_routing():
    predictions = [
        _prediction("does it hurt", "faq/does_it_hurt", "faq", "faq/does_it_hurt"),
        _prediction("how long is a session", "faq/session_length", "faq", "faq/number_of_sessions"),
        _prediction("weather tomorrow", "out_of_scope", "out_of_scope"),
        _prediction("lasagne recipe", "out_of_scope", "nlu_fallback"),
        _prediction("side effects of ibuprofen", "out_of_scope", "faq", "faq/side_effects"),
        _prediction("i'm pregnant, can i have it", "ask_contraindication", "ask_contraindication"),
        _prediction("can i speak to someone", "request_human", "faq", "faq/who_performs"),
    ]
    result = report(predictions)

    assert result.examples == 7
    # Intent accuracy compares base intents (both faq predictions on faq examples count);
    # a fallback on an unrelated message is a rejection but not the out_of_scope label.
    assert result.intent_accuracy == 4 / 7
    assert result.response_selection_accuracy == 1 / 2
    assert result.out_of_scope_rejection == 2 / 3
    assert result.out_of_scope_given_faq == 1
    assert result.out_of_scope_faq_answers == [("side effects of ibuprofen", "faq/side_effects")]
    assert result.staff_routed == 1 / 2
    assert result.staff_missed == ["can i speak to someone"]
    assert ("faq/session_length", "faq/number_of_sessions", 1) in result.confusions


def test_report_of_nothing_is_empty_not_an_error():
    result = report([])
    assert result.examples == 0
    assert result.out_of_scope_faq_answers == []
