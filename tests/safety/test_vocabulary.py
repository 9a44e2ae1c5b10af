"""One clinical vocabulary: reasons, priorities, intents and staff labels come from the decision table only."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.core import vocabulary as vocab
from bot.core.safety.verdict import SafetyVerdict

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "data" / "safety" / "decision_table.yml"


def table_reasons() -> dict:
    return yaml.safe_load(TABLE.read_text(encoding="utf-8"))["reasons"]


def test_the_enums_maps_and_labels_are_the_tables():
    from bot.core.safety.decision import default_table
    from bot.core.safety.routing import INTENT_REASONS
    from bot.core.store import models
    from bot.dashboard.web import presenters

    reasons = table_reasons()
    assert [r.value for r in models.Reason] == list(reasons)
    assert [p.value for p in models.Priority] == list(dict.fromkeys(spec["priority"] for spec in reasons.values()))
    assert {r: spec["priority"] for r, spec in reasons.items()} == default_table().priority
    assert {r: spec["intent"] for r, spec in reasons.items()} == default_table().intent
    assert presenters.REASONS == {r: spec["label"] for r, spec in reasons.items()}
    assert {p.value: rank for p, rank in models.PRIORITY_RANK.items()} == {"urgent": 0, "high": 1, "normal": 2}
    # The model alone choosing report_adverse_event stands for an adverse event, never an emergency.
    assert INTENT_REASONS == {"report_adverse_event": "adverse_event", "ask_contraindication": "contraindication",
                              "request_human": "human_request"}
    assert all(spec.get("label") for spec in reasons.values()), "every reason needs a staff-facing label"


def test_the_dashboard_words_are_unchanged():
    from bot.dashboard.web import presenters

    assert presenters.REASONS["emergency"] == "Red flag: possible emergency"
    assert presenters.REASONS["contraindication"] == "Is needling safe for me? (health question)"
    assert presenters.PRIORITIES == {"urgent": "Urgent", "high": "High", "normal": "Normal"}


@pytest.mark.parametrize("broken", [
    {},
    {"emergency": {"intent": "report_adverse_event"}},
    {"emergency": {"priority": "urgent"}},
    {"emergency": {"priority": "urgent", "intent": "report_adverse_event", "colour": "red"}},
    {"emergency": {"priority": "very urgent", "intent": "report_adverse_event"}},
    {"emergency": {"priority": "urgent", "intent": "report_adverse_event", "label": ""}},
    {"red flag": {"priority": "urgent", "intent": "report_adverse_event"}},
    ["emergency"],
])
def test_a_malformed_reasons_section_is_refused(broken):
    from bot.core.safety.decision import TableError, parse_table

    with pytest.raises(vocab.VocabularyError):
        vocab.parse_reasons(broken)
    with pytest.raises(TableError):
        parse_table({"reasons": broken, "rows": []})


def test_priorities_rank_where_the_severity_order_first_reaches_them():
    words = vocab.parse_reasons({
        "a": {"priority": "now", "intent": "i"}, "b": {"priority": "soon", "intent": "i"},
        "c": {"priority": "now", "intent": "j"}, "d": {"priority": "later", "intent": "k"},
    })
    assert words.priorities == ("now", "soon", "later")
    assert words.priority_of("c") == "now" and words.priority_of("zzz") is None and words.priority_of(None) is None
    assert words.reason_of_intent == {"i": "b", "j": "c", "k": "d"}
    assert words.most_serious(["d", None, "b"]) == "b"
    assert words.labels["d"] == "D"


EDITED = """
import json
from bot.core import vocabulary
from bot.core.escalation import record
from bot.core.safety.decision import default_table
from bot.core.safety.verdict import SafetyVerdict
from bot.core.store.models import PRIORITY_RANK
from bot.dashboard.web import presenters

state = {"sender_id": "s-1", "slots": {}, "events": [], "latest_input_channel": "rest",
         "latest_message": {"text": "x", "safety": {"reason": "contraindication"}}}
print(json.dumps({
    "table": default_table().priority["contraindication"],
    "verdict": SafetyVerdict.from_parse_data(state["latest_message"]).priority.value,
    "stored": record.escalation_input(state, "contraindication", True).priority.value,
    "label": presenters.REASONS["contraindication"],
    "ranks": {p.value: r for p, r in PRIORITY_RANK.items()},
}))
"""


def test_editing_the_table_changes_the_verdicts_and_the_stored_priority(tmp_path):
    rules = tmp_path / "safety"
    shutil.copytree(TABLE.parent, rules)
    text = (rules / TABLE.name).read_text(encoding="utf-8")
    line = 'contraindication: {priority: normal, intent: ask_contraindication, label: "Is needling safe for me? (health question)",'
    assert line in text
    (rules / TABLE.name).write_text(
        text.replace(line, line.replace("priority: normal", "priority: high").replace("Is needling", "Can I have needling")),
        encoding="utf-8",
    )
    env = {**os.environ, "SAFETY_RULES_DIR": str(rules), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", EDITED], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["table"] == seen["verdict"] == seen["stored"] == "high"
    assert seen["label"] == "Can I have needling safe for me? (health question)"
    assert seen["ranks"] == {"urgent": 0, "high": 1, "normal": 2}


def test_the_stored_priority_is_the_verdicts():
    from bot.core.escalation import record

    for reason in vocab.Reason:
        state = {"sender_id": "s", "slots": {}, "events": [], "latest_message": {"safety": {"reason": reason.value}}}
        verdict = SafetyVerdict.from_parse_data(state["latest_message"])
        assert record.escalation_input(state, reason.value, None).priority == verdict.priority
        assert verdict.priority.value == table_reasons()[reason.value]["priority"]


# --- one definition: no module writes the vocabulary out again ----------------------------

def _word(node: ast.AST):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in {"Reason", "Priority"}:
        return node.attr
    return None


def copies_in(source: str) -> list[int]:
    """Lines of ``source`` that write out a reason's priority, label or a priority's rank."""
    reasons = set(table_reasons())
    priorities = {spec["priority"] for spec in table_reasons().values()}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            keys, values = [_word(k) for k in node.keys if k is not None], node.values
            reason_keys = [k for k in keys if k in reasons]
            if len(reason_keys) >= 2 and any(_word(v) in priorities or isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value not in reasons for v in values):
                found.append(node.lineno)
            if len([k for k in keys if k in priorities]) >= 2 and any(isinstance(v, ast.Constant) for v in values):
                found.append(node.lineno)
        elif isinstance(node, (ast.Tuple, ast.List)):
            words = {_word(e) for e in node.elts}
            if words & reasons and words & priorities:
                found.append(node.lineno)
    return found


def test_the_detector_finds_a_written_out_priority_map():
    assert copies_in("PRIORITY_FOR = {Reason.emergency: Priority.urgent, Reason.adverse_event: Priority.high}")
    assert copies_in('REASONS = {"emergency": "Red flag", "adverse_event": "Problem after treatment"}')
    assert copies_in("RANK = {Priority.urgent: 0, Priority.high: 1, Priority.normal: 2}")
    assert copies_in('REASONS = [("emergency", "urgent", 0.05)]')
    assert not copies_in('INCIDENT_REASONS = ("emergency", "adverse_event")')


def test_no_module_writes_the_vocabulary_out_again():
    # Migrations are history: they keep the values of their day.
    sources = [p for folder in ("bot", "actions") for p in (REPO / folder).rglob("*.py") if "migrations" not in p.parts]
    copies = {str(p.relative_to(REPO)): copies_in(p.read_text(encoding="utf-8")) for p in sources}
    assert {path: lines for path, lines in copies.items() if lines} == {}
