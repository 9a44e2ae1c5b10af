"""The safety screen on whole messages: negation, third parties, hypotheticals, red flags.

Each case runs the whole screen (``screen_text``: normalisation, findings, ConText, decision
table) on the project's spaCy pipeline; no Rasa model is needed.
"""

from __future__ import annotations

import pytest

from bot.core.safety.routing import route, staff_bound
from bot.core.safety.screen import is_emergency, screen_text
from bot.core.safety.verdict import Verdict


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
        # Part of a needle left in the body is a red flag (retained_needle): A&E, not aftercare.
        ("i think part of the needle broke off in my calf", "emergency"),
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


# ---- the failures, fixed by mechanism (tokens, not characters; no tense guessing)


@pytest.mark.parametrize(
    "text",
    [
        "can the needles near an old scar cause breathing problems immediately?",
        "will my breathing improve immediately after the session or is chest tightness normal?",
        "does it improve circulation, and could it ever make someone faint?",
        "will i feel tired and drained after the session?",
        "i walked and cycled to the clinic, will i be too tired after the needling?",
        "I'm tired of searching online for this, is it normal to bruise after needling?",
    ],
)
def test_words_starting_with_im_or_ending_in_ed_do_not_make_a_question_a_report(nlp, text):
    assert screen(nlp, text).reason is None


def test_needle_phobia_with_a_fainting_history_is_a_contraindication_question(nlp):
    verdict = screen(nlp, "I'm terrified of needles and I fainted at my last blood test, is dry needling ok for me?")
    assert verdict.reason == "contraindication"
    assert "red_flag_history" in rules(verdict)


def test_a_fainting_history_alone_is_not_an_emergency(nlp):
    verdict = screen(nlp, "i passed out last time i had a blood test, should i have dry needling")
    assert verdict.reason == "contraindication"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("SINCE MY SESSION I CANT CATCH MY BREATH", "emergency"),
        ("sinec my sessoin i cant catch my breath", "emergency"),
        ("can my son have erm dry needling? he's 12", "contraindication"),
        ("who shouldn’t get dry needling?", "contraindication"),
    ],
)
def test_casing_misspelt_anchor_words_fillers_and_curly_quotes_are_normalised(nlp, text, reason):
    assert screen(nlp, text).reason == reason


def test_what_a_patient_said_before_naming_the_treatment_is_not_tied_to_it(nlp):
    verdict = screen(nlp, "I'm drained after my shift. bit sore today after yesterday's needling, normal?")
    assert verdict.reason is None
    verdict = screen(nlp, "had needling today. now my arm is numb")
    assert verdict.reason == "emergency"


def test_the_verdict_carries_evidence_contexts_rationale_and_priority(nlp):
    verdict = screen(nlp, "I fainted after the needling yesterday")
    data = verdict.as_dict()
    assert data["reason"] == "emergency" and data["priority"] == "urgent"
    fainting = next(e for e in data["evidence"] if e["category"] == "fainting")
    assert fainting["gives_reason"] and "TREATED" in fainting["contexts"] and fainting["rule"]
    assert data["rationale"] and "fainting:fainted" in data["matched_terms"]


def test_screen_alone_predicts_staff_routing(nlp):
    assert staff_bound(screen(nlp, "i'm on warfarin, how many sessions?"))
    assert not staff_bound(screen(nlp, "how many sessions will i need?"))
    # The model may still route what the screen makes no judgement on.
    assert staff_bound(screen(nlp, "how many sessions will i need?"), {"name": "request_human", "confidence": 0.9})
    # A staff-bound guess of the model is overruled when the screen cleared every finding.
    cleared = screen(nlp, "I'm not pregnant, does it hurt?")
    assert cleared.cleared
    assert not route(cleared, {"name": "ask_contraindication"}, [{"name": "ask_contraindication"}, {"name": "faq"}]).staff_bound


# ---- the mechanism: ConText, the decision table, the rule files


def _context(rules: list[dict], words: list[str], targets: list[tuple[str, int, int]]):
    from spacy.lang.en import English
    from spacy.tokens import Doc

    from bot.core.safety.context import ConText, Target, parse_rule

    doc = Doc(English().vocab, words=words)
    found = [Target(label=label, start=start, end=end) for label, start, end in targets]
    ConText([parse_rule(rule) for rule in rules], doc.vocab).apply(doc, found)
    return [t.categories for t in found]


NEG = {"literal": "not", "category": "NEGATED", "direction": "FORWARD"}


def test_context_a_terminator_ends_a_scope_that_max_scope_already_clipped():
    # medspaCy's limit_scope misses this case; here "but" ends the negation.
    words = "i am not dizzy but i have chest pain".split()
    rules = [{**NEG, "max_scope": 5}, {"literal": "but", "category": "TERMINATE", "direction": "TERMINATE"}]
    dizzy, chest_pain = _context(rules, words, [("SYMPTOM", 3, 4), ("RED_FLAG", 7, 9)])
    assert dizzy == {"NEGATED"} and chest_pain == set()


def test_context_directions_max_scope_and_terminated_by():
    words = "no bleeding , and no bruising and a lump".split()
    comma = {"literal": ",", "category": "COMMA", "direction": "TERMINATE"}
    rules = [{**NEG, "literal": "no", "terminated_by": ["COMMA"]}, comma]
    assert _context(rules, words, [("SYMPTOM", 1, 2), ("SYMPTOM", 5, 6), ("SYMPTOM", 8, 9)]) == [{"NEGATED"}, {"NEGATED"}, {"NEGATED"}]
    rules = [{**NEG, "literal": "no", "max_scope": 1}]
    assert _context(rules, words, [("SYMPTOM", 1, 2), ("SYMPTOM", 8, 9)]) == [{"NEGATED"}, set()]
    back = {"literal": "gone", "category": "HISTORICAL", "direction": "BACKWARD"}
    assert _context([back], "the rash is gone now".split(), [("CONDITION", 1, 2)]) == [{"HISTORICAL"}]
    assert _context([back], "gone is the rash".split(), [("CONDITION", 3, 4)]) == [set()]


def test_context_pseudo_triggers_block_shorter_ones_and_findings_hold_no_triggers():
    rules = [{**NEG, "literal": "not", "pattern": [{"LOWER": "not"}]},
             {"literal": "not stop", "category": "PSEUDO", "direction": "PSEUDO"}]
    assert _context(rules, "bleeding will not stop".split(), [("SYMPTOM", 0, 1)]) == [set()]
    assert _context([{**NEG, "literal": "n't"}], "i ca n't breathe".split(), [("RED_FLAG", 1, 4)]) == [set()]


def test_context_rule_file_errors_are_reported():
    from bot.core.safety.context import RuleError, parse_rule

    with pytest.raises(RuleError):
        parse_rule({"literal": "x", "category": "NEGATED", "direction": "SIDEWAYS"})
    with pytest.raises(RuleError):
        parse_rule({"literal": "x", "category": "NEGATED"})
    with pytest.raises(RuleError):
        parse_rule({"literal": "x", "category": "NEGATED", "direction": "FORWARD", "colour": "red"})


def test_the_decision_table_rejects_rows_without_rationale_or_with_unknown_reasons():
    from bot.core.safety.decision import TableError, parse_table

    reasons = {"emergency": {"priority": "urgent", "intent": "report_adverse_event"}}
    row = {"id": "r", "finding": ["RED_FLAG"], "reason": "emergency", "rationale": "why"}
    assert parse_table({"reasons": reasons, "rows": [row]}).rows[0].reason == "emergency"
    for broken in ({**row, "rationale": ""}, {**row, "reason": "panic"}, {**row, "finding": ["@nope"]},
                   {k: v for k, v in row.items() if k != "reason"}):
        with pytest.raises(TableError):
            parse_table({"reasons": reasons, "rows": [broken]})


def test_every_context_the_table_reads_is_assigned_by_a_rule_or_a_signal():
    from bot.core.safety.context import load_rules
    from bot.core.safety.decision import RULES_DIR, default_table

    table = default_table()
    assigned = {rule.category for rule in load_rules(RULES_DIR / "context_rules.json")} | set(table.signals)
    read = set().union(*(row.when | row.any | row.unless for row in table.rows))
    assert read <= assigned, read - assigned
    assert all(row.rationale for row in table.rows)
    assert table.severity == ("emergency", "adverse_event", "contraindication", "human_request")


def test_a_rule_file_change_takes_effect_without_retraining(tmp_path):
    import shutil

    from bot.core.safety.screen import Screen, pipeline

    rules = tmp_path / "safety"
    shutil.copytree(REPO_RULES, rules)
    text = "bit sore today after yesterday's needling, is that normal?"
    assert Screen(pipeline(), rules)(text).reason is None
    # A clinician decides mild soreness after a treatment should reach staff after all.
    table = rules / "decision_table.yml"
    row = '  - id: expected_reaction\n    finding: ["@expected_reaction"]\n    when: [TREATED, MILD]\n    unless: [SEVERE, ONGOING, WORSENING, REPORTING]\n    reason: none'
    assert row in table.read_text()
    table.write_text(table.read_text().replace(row, row.replace("reason: none", "reason: adverse_event")))
    assert Screen(pipeline(), rules)(text).reason == "adverse_event"


from bot.core.safety.decision import RULES_DIR as REPO_RULES  # noqa: E402


@pytest.mark.parametrize(
    "a, b, expected",
    [("sinec", "since", True), ("sessoin", "session", True), ("needlling", "needling", True), ("neele", "needle", True),
     ("aftr", "after", True), ("since", "since", False), ("seance", "since", False), ("needs", "needles", False)],
)
def test_one_edit_apart(a, b, expected):
    from bot.core.safety.screen import one_edit_apart

    assert one_edit_apart(a, b) is expected


def test_the_normaliser_keeps_real_words_and_meaningful_fillers():
    from bot.core.safety.screen import default_screen

    normalise = default_screen().normalise
    assert normalise("Sinec my SESSOIN um I’m dizzy so yeah") == "since my session i'm dizzy"
    # Real words are never "corrected", and "like" / "you know" stay where they mean something.
    assert normalise("the wince was bad") == "the wince was bad"
    assert normalise("i'd like a call back, do you know if that's ok") == "i'd like a call back, do you know if that's ok"
    assert normalise("where the you know needles were") == "where the needles were"


def test_subject_terms_match_words_prefixes_and_phrases():
    from spacy.lang.en import English

    from bot.core.safety.terms import TermList

    terms = TermList.parse(["needl*", "ims", "as well as", "didn't", "didnt"])
    nlp = English()
    assert terms.spans(nlp("dry needling as well as massage")) == [(1, 2), (2, 5)]
    assert terms.any(nlp("the massage didnt help")) and terms.any(nlp("it didn't help"))
    assert not terms.any(nlp("microneedling as well"))


@pytest.mark.parametrize(
    "text, reason",
    [
        # A red flag the patient reports as their own, now, is an emergency even as a question.
        ("I have chest pain, is that a common side effect?", "emergency"),
        ("is it normal that I cant breathe properly?", "emergency"),
        ("why do I feel faint and short of breath?", "emergency"),
        # Asked about as a risk, it is not.
        ("I am worried about getting chest pain after needling", None),
        ("could I get chest pain from needling?", None),
    ],
)
def test_a_reported_red_flag_outranks_its_question_form(nlp, text, reason):
    assert screen(nlp, text).reason == reason


def test_the_screen_never_overrules_a_staff_bound_training_example_given_its_own_label():
    # Recall guard: the screen may overrule the model only where it judged every finding
    # that could explain the guess; no staff-bound example of data/nlu is such a case.
    from evaluation.nlu import read_dir

    staff = {"ask_contraindication", "report_adverse_event", "request_human"}
    examples = [e for e in read_dir(REPO_RULES.parents[1] / "data" / "nlu") if e.intent in staff]
    assert len(examples) > 300
    lost = [e.text for e in examples if not staff_bound(screen_text(e.text), {"name": e.intent, "confidence": 0.9})]
    assert lost == []


@pytest.mark.parametrize(
    "text",
    [
        "should I go to A&E?",
        "Should I go to A & E",
        "do I need an ambulance",
        "I think I need to go to hospital",
        "should my husband ring 999?",
        "is this an emergency?",
        "is it serious enough for A&E",
    ],
)
def test_asking_whether_to_seek_emergency_care_gets_urgent_guidance_first(nlp, text):
    """The assistant cannot triage: a patient asking whether to go to A&E gets the urgent path."""
    verdict = screen(nlp, text)
    assert verdict.reason == "emergency"
    assert "care_seeking" in rules(verdict)


@pytest.mark.parametrize(
    "text",
    [
        "how long is the wait in A&E at the weekend",
        "do people ever end up in A&E after dry needling?",
        "does anyone ever need to go to hospital after dry needling?",
        "what if I need to go to A&E after?",
        "will I need to go to hospital if the needle breaks?",
        "I went to A&E last year with my knee, does needling hurt?",
        "should I see my GP about it",
    ],
)
def test_emergency_care_asked_about_in_general_or_in_the_past_is_not_an_emergency(nlp, text):
    assert screen(nlp, text).reason != "emergency"


def test_ruling_out_emergency_care_leaves_the_rest_of_the_message_to_decide(nlp):
    verdict = screen(nlp, "I don't think I need to go to A&E but is a small bruise normal after needling?")
    assert verdict.reason != "emergency"
    assert "care_not_now" in rules(verdict)


@pytest.mark.parametrize(
    "text",
    [
        "Can a needle puncture your lung? I read about an NFL player who ended up with a collapsed lung",
        "I saw a post about someone who fainted during dry needling, does that happen a lot?",
    ],
)
def test_something_read_or_heard_about_is_a_question_about_a_risk(nlp, text):
    assert screen(nlp, text).reason != "emergency"


def test_watching_tv_is_not_hearsay_about_a_red_flag_reported_later(nlp):
    verdict = screen(nlp, "had my session yesterday, drove home and watched tv then last night noticed its hard to "
                          "breathe when i lie down and it is still there this morning")
    assert verdict.reason == "emergency"
