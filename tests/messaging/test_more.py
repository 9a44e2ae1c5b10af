"""Short answers first on SMS: the turn's FAQ answers shortened, the full answer kept for MORE."""

from __future__ import annotations

import pytest

from bot.assistant.messaging.choices import Choice
from bot.assistant.messaging.more import FullAnswer, ShortAnswers, asks_for_more, stored_full_answer
from bot.assistant.messaging.replies import render_turn
from bot.assistant.messaging.texts import load_texts
from bot.core.clinic import load_clinic
from bot.core.knowledge import catalog
from bot.core.settings import REPO_ROOT

CLINIC = load_clinic(REPO_ROOT / "clinic.yml")
TEXTS = load_texts()
INVITATION = TEXTS.render("more_offer", CLINIC)
KB = catalog.load()
SHORT = ShortAnswers.load(CLINIC, KB)


def faq_message(topic: str) -> dict:
    answer = KB.faq[topic]
    return {
        "text": answer.text.format_map(CLINIC.template_values()), "utter_action": answer.name,
        "metadata": {"kb": {"version": answer.version, "reviewed": str(answer.reviewed), "sources": list(answer.sources)}},
    }


def test_an_faq_answer_becomes_its_short_version_with_the_invitation_and_keeps_its_sources():
    message = faq_message("does_it_hurt")
    [short], full = SHORT.shorten([message], INVITATION)

    expected = KB.faq["does_it_hurt"].short.format_map(CLINIC.template_values())
    assert short["text"] == f"{expected} {INVITATION}"
    assert short["metadata"] == message["metadata"] and short["utter_action"] == "utter_faq/does_it_hurt"
    assert full == FullAnswer("utter_faq/does_it_hurt", message["text"])
    assert message["text"] != short["text"]  # the caller's message is left as it was


def test_other_messages_pass_unchanged_and_a_turn_without_an_faq_answer_offers_no_more():
    menu = {"text": "Anything else?", "buttons": [{"title": "Yes", "payload": "/affirm"}]}
    unknown = {"text": "Something", "utter_action": "utter_greet"}
    messages, full = SHORT.shorten([menu, unknown], INVITATION)
    assert messages == [menu, unknown] and full is None


@pytest.mark.parametrize("topic", sorted(KB.faq))
def test_every_short_answer_with_the_invitation_is_one_text(topic):
    [short], _ = SHORT.shorten([faq_message(topic)], INVITATION)
    parts = render_turn([short], TEXTS.part_chars).parts
    assert len(parts) == 1 and "{" not in parts[0]
    assert parts[0].endswith("Reply MORE for the full answer.")


def test_the_full_answer_goes_out_in_marked_parts():
    parts = render_turn([{"text": faq_message("safety")["text"]}], TEXTS.part_chars).parts
    assert len(parts) > 1 and parts[0].startswith("(1/") and all(len(part) <= TEXTS.part_chars for part in parts)


@pytest.mark.parametrize("text", ["MORE", "more", " More. ", "more please", "More please!", "tell me more",
                                  "Tell me more.", "full answer"])
def test_more_and_its_phrasings_ask_for_the_full_answer(text):
    assert asks_for_more(text, TEXTS.more)


@pytest.mark.parametrize("text", ["", None, "more pain than before", "I'd like more sessions", "moreover", "STOP",
                                  "tell me more about my chest pain"])
def test_other_messages_do_not(text):
    assert not asks_for_more(text, TEXTS.more)


def test_the_full_answer_is_found_among_the_stored_choices_and_numbered_choices_ignore_it():
    stored = [Choice(1, "Yes", "/affirm").to_dict(), FullAnswer("utter_faq/safety", "Full text.").to_dict()]
    assert stored_full_answer(stored) == FullAnswer("utter_faq/safety", "Full text.")
    assert [Choice.from_dict(raw) for raw in stored] == [Choice(1, "Yes", "/affirm"), None]
    assert stored_full_answer([Choice(1, "Yes", "/affirm").to_dict()]) is None
    assert stored_full_answer(None) is None
    assert stored_full_answer([{"more": "utter_faq/safety", "text": "  "}, "junk"]) is None
