"""The safety screen on whole messages: negation, third parties, hypotheticals, red flags.

Each case runs the whole screen (``screen_text``: normalisation, findings, ConText, decision
table) on the project's spaCy pipeline; no Rasa model is needed.
"""

from __future__ import annotations

import pytest

from bot.safety.routing import route, staff_bound
from bot.safety.screen import is_emergency, screen_text
from bot.safety.verdict import Verdict


@pytest.fixture(scope="module")
def nlp():
    """The screen loads the project's pipeline itself (``build/spacy``); nothing to pass."""
    return None


def screen(nlp, text: str) -> Verdict:
    return screen_text(text)


def rules(verdict: Verdict) -> set[str]:
    """The decision-table rows that decided the message's findings."""
    return {e.rule for e in verdict.evidence if e.rule}


def contexts(verdict: Verdict, category: str) -> set[str]:
    """The context categories of the finding of ``category``."""
    return next(set(e.contexts) for e in verdict.evidence if e.category == category)


@pytest.mark.parametrize(
    "text",
    [
        "I'm not pregnant, does it hurt?",
        "i dont take any blood thinners, how long is a session",
        "no pacemaker or anything, what should i wear",
        "can it cause a collapsed lung?",
        "will I be sore afterwards?",
        "is there a risk of bleeding in general?",
    ],
)
def test_ordinary_questions_are_not_escalated(nlp, text):
    assert screen(nlp, text).reason is None


@pytest.mark.parametrize(
    "text, reason",
    [
        ("my mother takes warfarin, can she have it?", "contraindication"),
        ("im on xarelto can i still get needled", "contraindication"),
        ("not sure if I'm pregnant, is that a problem?", "contraindication"),
        ("I'm not on warfarin but I do take eliquis", "contraindication"),
        ("since my session this morning i cant catch my breath", "emergency"),
        ("I fainted after the needling yesterday", "emergency"),
        ("struggling to breathe", "emergency"),
        ("still sore 5 days after my treatment, is that normal", "adverse_event"),
    ],
)
def test_staff_bound_messages_are_escalated(nlp, text, reason):
    assert screen(nlp, text).reason == reason


def test_third_party_is_personal(nlp):
    verdict = screen(nlp, "my husband has a pacemaker, could he try it?")
    assert verdict.third_party and verdict.personal and verdict.reason == "contraindication"


def test_general_question_is_not_personal(nlp):
    verdict = screen(nlp, "can pregnant women have dry needling?")
    assert verdict.reason == "contraindication" and not verdict.personal


def test_child_only_counts_when_their_treatment_is_asked_about(nlp):
    assert screen(nlp, "my daughter recommended you, how do i book?").reason is None
    assert screen(nlp, "can my 10 year old have dry needling?").reason == "contraindication"


def test_a_symptom_after_a_treatment_gets_the_adverse_event_path(nlp):
    assert screen(nlp, "really sore today after yesterday's needling, is that normal?").reason == "adverse_event"
    assert screen(nlp, "still sore 5 days after the needling").reason == "adverse_event"
    assert screen(nlp, "the puncture mark is itchy and raised").reason == "adverse_event"
    assert screen(nlp, "will I be sore after my session?").reason is None


@pytest.mark.parametrize(
    "text",
    [
        "bit sore today after yesterday's needling, is that normal?",
        "little bruise where the needle went in, normal?",
        "a bit achy after this morning's session, can i still go to the gym?",
        "small bruise from the needle 3 days ago, already fading, normal?",
    ],
)
def test_mild_expected_after_effects_are_left_to_the_faq(nlp, text):
    verdict = screen(nlp, text)
    assert verdict.reason is None and "expected_reaction" in rules(verdict)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("a bit sore and my arm feels numb after the needling", "emergency"),
        ("bit sore after needling but the bruise is getting bigger", "adverse_event"),
        ("a little bruise from the needles 3 weeks ago that hasn't faded", "adverse_event"),
        ("felt really emotional and teary after the session", "adverse_event"),
        ("i think part of the needle broke off in my calf", "adverse_event"),
        ("the bruise on my thigh keeps spreading", "adverse_event"),
        ("tiny bruises all over my back after the session, is that normal", "adverse_event"),
        ("a bit sore 4 days after the needling, normal?", "adverse_event"),
        ("the needle spot is bleeding and wont stop, pressed on it for 20 mins", "emergency"),
        ("still bleeding 30 mins after the session", "emergency"),
        # Told to the clinic on purpose: passed on to staff, however mild.
        ("small bruise on my arm, nothing major, just letting you know", "adverse_event"),
        ("a bit of bleeding when the plaster came off, stopped now but thought i should tell you", "adverse_event"),
    ],
)
def test_worse_or_unusual_after_effects_still_reach_staff(nlp, text, reason):
    verdict = screen(nlp, text)
    assert verdict.reason == reason
    # The finding behind the reason is not one the table judged an expected after-effect.
    assert all(e.rule != "expected_reaction" for e in verdict.evidence if e.gives_reason)


def test_if_clauses_are_questions_not_experiences(nlp):
    verdict = screen(nlp, "what should i do if i feel faint during the treatment?")
    assert verdict.reason is None and "HYPOTHETICAL" in contexts(verdict, "dizziness")
    verdict = screen(nlp, "i feel faint after my session, what do i do?")
    assert "HYPOTHETICAL" not in contexts(verdict, "dizziness") and verdict.reason == "adverse_event"
    assert screen(nlp, "what do i do if i can't breathe properly since my session").reason == "emergency"


def test_matched_terms_name_category_and_text(nlp):
    assert "anticoagulant:warfarin" in screen(nlp, "I take warfarin").matched_terms


def test_the_actions_read_the_emergency_from_the_verdict_in_the_parse_data():
    assert is_emergency({"intent": {"name": "report_adverse_event"}, "safety": {"reason": "emergency"}})
    assert not is_emergency({"intent": {"name": "report_adverse_event"}, "safety": {"reason": "adverse_event"}})
    assert not is_emergency({"intent": {"name": "report_adverse_event"}})


def test_a_model_routed_adverse_event_naming_an_unlinked_red_flag_is_an_emergency(nlp):
    # The screen makes no judgement on a fever with no treatment named; if the model routes
    # the message to report_adverse_event, the red flag makes it urgent.
    verdict = screen(nlp, "got a fever and the spot is red")
    assert verdict.reason is None and "red_flag_unlinked" in rules(verdict)
    assert route(verdict, {"name": "report_adverse_event", "confidence": 0.8}).reason == "emergency"
    assert route(verdict, {"name": "faq", "confidence": 0.8}).reason is None


@pytest.mark.parametrize(
    "text, reason",
    [
        ("can i chat to an actual human being", "human_request"),
        ("how do i get hold of my physio directly", "human_request"),
        ("are you a bot? i want a real person", "human_request"),
        ("are you a real person?", None),
        ("muscles are super tender 4 days post needling", "adverse_event"),
        ("i'd like a call back", "human_request"),
        ("my shoulder hurts more now than before the dry needling", "adverse_event"),
        ("i need to talk to Jess, she did my needling", "human_request"),
        ("i want to talk to you about needling", None),
        ("is there somebody at reception I could speak with", "human_request"),
        ("can i have a word with a physio", "human_request"),
        ("you're a bot, i want someone real", "human_request"),
        ("can Dr Osei ring me tomorrow", "human_request"),
        ("agent pls", "human_request"),
        ("Representative.", "human_request"),
        ("live agent", "human_request"),
        ("real person please", "human_request"),
        ("i'd rather an actual human answered me, not software", "human_request"),
        ("could I have a quick chat with Maeve, she treated me last week", "human_request"),
        ("please get Aoife to give me a shout", "human_request"),
        ("can you ask the physio to ring me", "human_request"),
        ("just letting you know I'll be 10 minutes late", None),
        # General questions about who may not have it: the screen routes them itself now
        # (before, only the model did; the outcome, staff, is the same).
        ("is there anyone who shouldn't have dry needling", "contraindication"),
        ("can anyone have it or are there people who should avoid it", "contraindication"),
        ("what do i call my physio, by first name?", None),
        # Contact details given to the handover form, or a request called off.
        ("you can ring me on 07700 900 456", None),
        ("phone me, it's sam.k@example.com", None),
        ("easiest to phone me after 5", None),
        ("i don't want anyone to call me back now", None),
        ("nah skip the callback, all sorted", None),
        ("no need for a call, thanks", None),
        ("on second thoughts i don't want anyone contacting me", None),
        ("stop the callback please, sorted it myself", None),
        ("please ring me, i'd like to talk to a physio", "human_request"),
        ("i don't know who to talk to, can a physio call me back", "human_request"),
        ("it would be best if someone could ring me", "human_request"),
    ],
)
def test_requests_for_a_person_and_post_treatment_wording(nlp, text, reason):
    assert screen(nlp, text).reason == reason


@pytest.mark.parametrize(
    "text, reason",
    [
        # What will happen: a question, even with "I'm" in it.
        ("am i gonna be sore after the needles", None),
        ("i'm a chef on my feet all day, will i be stiff the next day after a session", None),
        # What has happened, or a red flag: never a question about the future.
        ("really sore after the session, will it settle", "adverse_event"),
        ("my arm is numb after needling, will it wear off", "emergency"),
        ("one needle gave me a sharp pain and it has ached ever since", "adverse_event"),
    ],
)
def test_future_questions_and_past_reports(nlp, text, reason):
    assert screen(nlp, text).reason == reason


def test_persistence_is_not_negation(nlp):
    assert screen(nlp, "the needle spot won't stop dripping blood").reason == "emergency"
    assert screen(nlp, "will the bleeding stop quickly after needling?").reason is None
    assert screen(nlp, "I'm not bleeding, does it hurt?").reason is None


def test_never_having_had_needling_is_not_a_treatment_context(nlp):
    assert screen(nlp, "I've never had dry needling before, will I be sore?").reason is None


def test_being_needled_soon_is_not_after_a_treatment(nlp):
    assert "TREATED" not in screen(nlp, "getting dry needled on friday, will my leg feel weak after?").signals
    assert "TREATED" in screen(nlp, "got needled on friday and my leg feels weak").signals


@pytest.mark.parametrize(
    "text, reason",
    [
        ("what's the minimum age for this? my daughter is 14", "contraindication"),
        ("can my son have it, he's 12", "contraindication"),
        ("my 15 yo plays rugby, can he have needling", "contraindication"),
        ("my daughter is 25 and wants to try it", None),
        ("my wife, she's 5 foot 2, can she have needling", None),
        ("i'm 40 and my back hurts, can you help", None),
        # "it's" is not the treatment: a child named with no treatment asked about.
        ("can u help with my kid's maths homework, it's long division", None),
        ("is it ok for my kids to have it", "contraindication"),
    ],
)
def test_ages_of_children_asked_about_treatment(nlp, text, reason):
    assert screen(nlp, text).reason == reason
