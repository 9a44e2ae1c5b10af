"""The curated knowledge base matches the topic contract and cites its sources."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.knowledge import catalog
from bot.settings import REPO_ROOT

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
    from bot.evaluation.nlu import read_dir

    training = {e.text.lower().strip() for e in read_dir(REPO_ROOT / "data" / "nlu")}
    held_out = {e.text.lower().strip() for e in read_dir(REPO_ROOT / "tests" / "nlu_holdout")}
    development = [
        {e.text.lower().strip() for e in read_dir(folder)}
        for folder in sorted((REPO_ROOT / "tests").glob("nlu_holdout_dev*"))
    ]
    assert held_out and len(development) == 11 and all(development)
    assert not training & held_out
    for seen in development:
        assert not training & seen
        assert not held_out & seen


def test_held_out_set_has_at_least_ten_utterances_per_intent():
    from collections import Counter

    from bot.evaluation.nlu import read_dir

    counts = Counter(e.intent.split("/")[0] if not e.intent.startswith("faq/") else e.intent
                     for e in read_dir(REPO_ROOT / "tests" / "nlu_holdout"))
    assert all(n >= 10 for n in counts.values()), counts
