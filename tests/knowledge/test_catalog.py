"""The curated knowledge base matches the topic contract and cites its sources."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.core.knowledge import catalog
from bot.core.settings import REPO_ROOT

CONTRACT = REPO_ROOT.parent / "shared" / "spec" / "topics.md"


def contract_topics() -> set[str]:
    if not CONTRACT.exists():
        pytest.skip(f"topic contract not found at {CONTRACT} (shared/ sits beside the repository in CI)")
    return set(re.findall(r"^\| faq/([a-z_]+) \|", CONTRACT.read_text(encoding="utf-8"), re.M))


def trained_faq_topics() -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in (REPO_ROOT / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            intent = block.get("intent", "")
            if intent.startswith("faq/"):
                examples = [line for line in block["examples"].splitlines() if line.strip().startswith("- ")]
                counts[intent[4:]] = counts.get(intent[4:], 0) + len(examples)
    return counts


@pytest.fixture(scope="module")
def kb() -> catalog.KnowledgeBase:
    return catalog.load()


def test_every_contract_topic_has_a_curated_answer(kb):
    assert contract_topics() <= set(kb.faq)


def test_knowledge_base_has_no_problems(kb):
    assert catalog.problems(kb, trained_faq_topics()) == []


def test_every_answer_has_training_examples_and_no_orphans(kb):
    trained = trained_faq_topics()
    assert set(kb.faq) == set(trained)
    assert all(count >= 25 for count in trained.values()), trained


def test_every_faq_answer_cites_at_least_one_source(kb):
    for topic, answer in kb.faq.items():
        assert answer.sources and all(s in kb.sources for s in answer.sources), topic


def test_problems_reports_missing_sources_and_forbidden_claims(kb):
    broken = catalog.KnowledgeBase(sources=dict(kb.sources))
    good = kb.faq["evidence"]
    broken.answers["utter_faq/evidence"] = catalog.Answer(
        name="utter_faq/evidence",
        text=good.text + " About 80% of patients get immediate relief.",
        version=1, reviewed=good.reviewed, sources=("nobody2020",), title="x",
    )
    found = "\n".join(catalog.problems(broken, ["evidence"]))
    assert "unknown source 'nobody2020'" in found
    assert "80%" in found
    assert "not cited" in found


def test_clinic_specific_facts_are_placeholders_not_text(kb):
    clinic_yml = yaml.safe_load((REPO_ROOT / "clinic.yml").read_text(encoding="utf-8"))
    for answer in kb.answers.values():
        for value in (clinic_yml["phone"], clinic_yml["booking_url"], clinic_yml["name"]):
            assert value not in answer.text, (answer.name, value)


def test_held_out_utterances_are_not_in_the_training_data():
    from evaluation.nlu import read_dir

    training = {e.text.lower().strip() for e in read_dir(REPO_ROOT / "data" / "nlu")}
    held_out = {e.text.lower().strip() for e in read_dir(REPO_ROOT / "evaluation" / "sets" / "nlu_holdout")}
    development = [
        {e.text.lower().strip() for e in read_dir(folder)}
        for folder in sorted((REPO_ROOT / "evaluation" / "sets").glob("nlu_holdout_dev*"))
    ]
    assert held_out and len(development) == 11 and all(development)
    assert not training & held_out
    for seen in development:
        assert not training & seen
        assert not held_out & seen


def test_held_out_set_has_at_least_ten_utterances_per_intent():
    from collections import Counter

    from evaluation.nlu import read_dir

    counts = Counter(e.intent.split("/")[0] if not e.intent.startswith("faq/") else e.intent
                     for e in read_dir(REPO_ROOT / "evaluation" / "sets" / "nlu_holdout"))
    assert all(n >= 10 for n in counts.values()), counts


# --- A UK clinic's answers: reading ease, one-text versions, UK sources, the corrections ---

# GSM 03.38 basic alphabet: any other character (a curly quote, an en dash) turns the text
# into UCS-2, where one SMS holds 70 characters instead of 160.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
MIN_READING_EASE = 60


def filled(text: str) -> str:
    """The text as the shipped clinic's patients read it."""
    from bot.core.clinic import load_clinic

    return text.format(**load_clinic(REPO_ROOT / "clinic.yml").template_values())


def faq_topics() -> list[str]:
    return sorted(catalog.load().faq)


@pytest.mark.parametrize("topic", faq_topics())
def test_every_faq_answer_reads_easily(kb, topic):
    import textstat

    long_text, short_text = filled(kb.faq[topic].text), filled(kb.faq[topic].short)

    assert textstat.flesch_reading_ease(long_text) >= MIN_READING_EASE, long_text
    assert textstat.flesch_reading_ease(short_text) >= MIN_READING_EASE, short_text


@pytest.mark.parametrize("topic", faq_topics())
def test_every_short_version_fits_one_text_message_of_plain_characters(kb, topic):
    text = filled(kb.faq[topic].short)

    assert 0 < len(text) <= catalog.SHORT_MAX_CHARS, (len(text), text)
    assert set(text) <= GSM7, set(text) - GSM7


def test_short_answers_gives_the_short_version_of_every_faq_answer_by_response_name(kb):
    shorts = catalog.short_answers(kb)

    assert {f"utter_faq/{topic}" for topic in kb.faq} <= set(shorts)
    assert shorts["utter_faq/needles_used"] == kb.faq["needles_used"].short
    assert "\n" not in shorts["utter_faq/needles_used"]


def test_short_answers_loads_the_shipped_files_by_default():
    assert catalog.short_answers()["utter_faq/does_it_hurt"].startswith("Most people")


@pytest.mark.parametrize("topic", faq_topics())
def test_every_faq_answer_cites_a_uk_source_or_says_why_none_exists(kb, topic):
    answer = kb.faq[topic]
    uk = [s for s in answer.sources if kb.sources[s].uk]

    assert bool(uk) != bool(answer.no_uk_source), (topic, uk, answer.no_uk_source)


def test_most_faq_answers_rest_on_a_uk_source(kb):
    without = sorted(topic for topic, answer in kb.faq.items() if answer.no_uk_source)

    assert without == ["aftercare", "does_it_hurt", "session_length", "side_effects"]


def test_no_faq_answer_cites_a_source_kept_only_for_older_answers(kb):
    weak = {source.id for source in kb.sources.values() if source.weak}

    assert weak  # the catalogue still lists some for the safety answers
    for topic, answer in kb.faq.items():
        assert not weak & set(answer.sources), topic


@pytest.mark.parametrize("topic", ["relief_duration", "how_it_works", "conditions_treated", "combine_with_exercise"])
def test_relief_mechanism_and_conditions_say_it_works_best_alongside_exercise(kb, topic):
    assert "works best alongside exercise" in kb.faq[topic].text
    assert "alongside exercise" in kb.faq[topic].short


def test_does_it_hurt_does_not_turn_a_side_effect_rate_into_how_many_feel_pain(kb):
    answer = kb.faq["does_it_hurt"]

    for text in (answer.text, answer.short):
        assert not re.search(r"\d+\s*(%|in (every )?\d+|of every|out of)", text), text


def test_the_electric_shock_feeling_comes_with_tell_your_physiotherapist_at_once(kb):
    answer = kb.faq["does_it_hurt"]

    assert re.search(r"electric-shock feeling[^.]*tell your physiotherapist at once", answer.text)
    assert re.search(r"electric-shock feeling[^.]*tell your physio at once", answer.short)


def test_the_needles_answer_says_single_use_sterile_and_disposed_of_after_one_use(kb):
    for text in (kb.faq["needles_used"].text, kb.faq["needles_used"].short):
        assert "single-use" in text and "sterile" in text and "after one use" in text and "never reused" in text


def test_problems_reports_a_missing_uk_source_a_weak_source_and_a_long_short_version(kb):
    good = kb.faq["relief_duration"]
    weak = next(source.id for source in kb.sources.values() if source.weak)
    broken = catalog.KnowledgeBase(sources=dict(kb.sources), domain_responses=kb.domain_responses)
    broken.answers["utter_faq/relief_duration"] = catalog.Answer(
        name=good.name, text=good.text, version=2, reviewed=good.reviewed, title=good.title,
        follow_up="", sources=("gattie2017", weak), short="x" * (catalog.SHORT_MAX_CHARS + 1),
    )

    found = "\n".join(catalog.problems(broken, ["relief_duration"]))

    assert "cites no UK source and does not say why" in found
    assert f"cites {weak}, which is kept only for older answers" in found
    assert f"short version of {catalog.SHORT_MAX_CHARS + 1} characters" in found


def test_problems_reports_a_stale_no_uk_source_note_and_a_missing_short_version(kb):
    good = kb.faq["needles_used"]
    broken = catalog.KnowledgeBase(sources=dict(kb.sources), domain_responses=kb.domain_responses)
    broken.answers[good.name] = catalog.Answer(
        name=good.name, text=good.text, version=2, reviewed=good.reviewed, title=good.title,
        follow_up="", sources=good.sources, no_uk_source="none found",
    )

    found = "\n".join(catalog.problems(broken, ["needles_used"]))

    assert "cites a UK source but still says it has none" in found
    assert "has no short (one text message) version" in found


def test_problems_reports_an_answer_not_reviewed_for_over_a_year(kb):
    from datetime import timedelta

    good = kb.faq["needles_used"]
    stale = catalog.KnowledgeBase(sources=dict(kb.sources), domain_responses=kb.domain_responses)
    stale.answers[good.name] = good
    due = good.reviewed + timedelta(days=catalog.REVIEW_INTERVAL_DAYS + 1)

    assert not any("due for review" in p for p in catalog.problems(stale, ["needles_used"], today=due - timedelta(days=1)))
    assert any("due for review" in p for p in catalog.problems(stale, ["needles_used"], today=due))
