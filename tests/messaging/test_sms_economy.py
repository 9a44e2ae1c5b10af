"""SMS economy: segment counting (GSM-7 160/153, UCS-2 70/67), FAQ answers within 2 segments, urgent first."""

from __future__ import annotations

import pytest

from bot.assistant.messaging.economy import fit_offer, urgent_first
from bot.assistant.messaging.more import ShortAnswers
from bot.assistant.messaging.texts import load_texts
from bot.core.clinic import load_clinic
from bot.core.messaging.segments import is_gsm7, segments, total_segments
from bot.core.settings import REPO_ROOT

CLINIC = load_clinic(REPO_ROOT / "clinic.yml")
TEXTS = load_texts()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
        ("€" * 80, 1), ("€" * 81, 2),  # an extension character takes two
        ("é" * 160, 1),  # in the GSM-7 basic table
        ("ā" * 70, 1), ("ā" * 71, 2), ("ā" * 134, 2), ("ā" * 135, 3),  # UCS-2
        ("a" * 69 + "😀", 2),  # an emoji is two UTF-16 units and makes the text UCS-2
    ],
)
def test_segments_follow_the_gsm_standard(text, expected):
    assert segments(text) == expected


def test_one_character_outside_gsm7_makes_the_whole_text_ucs2():
    assert is_gsm7("Call 999 now.") and not is_gsm7("Call 999 now ’")
    assert segments("a" * 100) == 1 and segments("a" * 99 + "’") == 2
    assert total_segments(["a" * 161, "b"]) == 3


@pytest.mark.parametrize("name", sorted(ShortAnswers.load(CLINIC).texts))
def test_every_faq_answer_by_text_fits_two_segments_with_its_more_offer(name):
    short = ShortAnswers.load(CLINIC)
    offer = TEXTS.render("more_offer", CLINIC)
    messages, full = short.shorten([{"text": "The full answer.", "utter_action": name}], offer)
    [message] = fit_offer(messages, offer, TEXTS.render("more_offer_short", CLINIC), TEXTS.answer_segments)
    assert full is not None and message["text"].startswith(short.texts[name])
    assert "Reply MORE" in message["text"]
    assert segments(message["text"]) <= TEXTS.answer_segments == 2


def test_the_shorter_offer_is_used_only_when_the_usual_one_would_cost_a_segment_more():
    offer, shorter = "Reply MORE for the full answer.", "Reply MORE for more."
    fits = {"text": "x" * 200 + " " + offer}
    too_long = {"text": "x" * 280 + " " + offer}
    kept, shortened = fit_offer([fits, too_long], offer, shorter, 2)
    assert kept == fits and shortened["text"] == "x" * 280 + " " + shorter


def test_the_urgent_guidance_goes_first_and_one_disclosure_after_it():
    opening = {"text": "Hello, a long opening.", "utter_action": "utter_disclosure"}
    guidance = {"text": "Call 999 now.", "utter_action": "utter_red_flag_urgent"}
    form = {"text": "Can we call you?", "buttons": [{"title": "Yes", "payload": "/affirm"}]}
    ordered = urgent_first([opening, guidance, form], lambda m: m.get("utter_action") == "utter_disclosure", "Short.")
    assert ordered == [guidance, {"text": "Short."}, form]


def test_the_urgent_disclosure_is_one_segment_and_says_texts_are_not_secure():
    disclosure = TEXTS.render("urgent_disclosure", CLINIC)
    assert segments(disclosure) == 1
    assert CLINIC.name in disclosure and "don't send detailed medical information" in disclosure
