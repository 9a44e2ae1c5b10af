"""Step 3 of the screen: the decision table (``data/safety/decision_table.yml``).

Each finding, with its context categories, is matched against the table's rows top to
bottom; the first row that fits gives the finding a reason (or, for a link to a
treatment, a message-wide signal such as ``TREATED``). The message's reason is the
most serious of its findings' reasons, in the table's severity order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

import yaml

from bot.core.safety.catalogue import CATALOGUE_DIR, catalogue_in
from bot.core.vocabulary import RULES_DIR, TABLE_FILE, Vocabulary, VocabularyError, parse_reasons

__all__ = ["RULES_DIR", "TABLE_FILE", "DecisionTable", "Row", "TableError", "default_table", "load_table", "parse_table"]

#: A row's outcome when the finding is judged ordinary (and a staff-bound guess of the model is overruled).
REASON_NONE = "none"
#: A row's outcome when the screen makes no judgement (the model's intent stands).
DEFER = "defer"


class TableError(ValueError):
    """The decision table is malformed."""


@dataclass(frozen=True)
class Row:
    """One row: which findings, which contexts, what follows, and why."""

    id: str
    findings: frozenset
    when: frozenset = frozenset()
    any: frozenset = frozenset()
    unless: frozenset = frozenset()
    reason: Optional[str] = None
    signal: Optional[str] = None
    rationale: str = ""
    #: What the row says: a reason, ``none``, ``defer`` or ``signal:NAME``.
    outcome: str = REASON_NONE

    def fits(self, label: str, category: str, contexts: set[str]) -> bool:
        """Whether this row decides a finding with ``label``/``category`` and ``contexts``."""
        if label not in self.findings and f"{label}:{category}" not in self.findings:
            return False
        if not self.when <= contexts or contexts & self.unless:
            return False
        return not self.any or bool(contexts & self.any)


@dataclass
class DecisionTable:
    """The rows, and the clinical vocabulary: the severity order of reasons and each reason's
    priority and intent (:mod:`bot.core.vocabulary`, from the table's ``reasons``)."""

    rows: list[Row]
    severity: tuple[str, ...]
    priority: dict[str, str]
    intent: dict[str, str]
    signals: frozenset = field(default_factory=frozenset)
    #: Rows of the ``signals`` section: a finding sets a message-wide signal and is still decided by ``rows``.
    signal_rows: list[Row] = field(default_factory=list)

    def signals_of(self, label: str, category: str, contexts: set[str]) -> set[str]:
        """The message-wide signals a finding sets (the ``signals`` section)."""
        return {row.signal for row in self.signal_rows if row.signal and row.fits(label, category, contexts)}

    def decide(self, label: str, category: str, contexts: set[str]) -> Optional[Row]:
        """The first row that fits, or ``None``."""
        return next((row for row in self.rows if row.fits(label, category, contexts)), None)

    def rank(self, reason: Optional[str]) -> int:
        """0 for the most serious reason; no reason ranks last."""
        return self.severity.index(reason) if reason in self.severity else len(self.severity)

    def most_serious(self, reasons: Iterable[Optional[str]]) -> Optional[str]:
        """The most serious of ``reasons`` (``None`` when there is none)."""
        ranked = sorted((r for r in reasons if r in self.severity), key=self.rank)
        return ranked[0] if ranked else None


def _expand(names: Sequence[str], groups: dict[str, list[str]], where: str) -> frozenset:
    out: set[str] = set()
    for name in names:
        if name.startswith("@"):
            if name[1:] not in groups:
                raise TableError(f"{where}: unknown group {name}")
            out |= set(groups[name[1:]])
        else:
            out.add(name)
    return frozenset(out)


def parse_table(data: dict, extra_groups: Optional[dict[str, list[str]]] = None) -> DecisionTable:
    """Build the table from its YAML form, checking every row.

    ``extra_groups`` are groups defined elsewhere (the red-flag catalogue's
    ``red_flag_always`` / ``red_flag_after_treatment``); the table may not redefine them.
    """
    try:
        reasons = data["reasons"]
        groups = dict(data.get("groups") or {})
        raw_rows = data["rows"]
    except (KeyError, TypeError) as exc:
        raise TableError(f"decision table needs 'reasons' and 'rows' ({exc})") from exc
    try:
        vocabulary: Vocabulary = parse_reasons(reasons)
    except VocabularyError as exc:
        raise TableError(str(exc)) from exc
    for name, members in (extra_groups or {}).items():
        if name in groups:
            raise TableError(f"group {name} is defined by the red-flag catalogue, not the table")
        groups[name] = list(members)
    severity = vocabulary.severity
    seen: set[str] = set()
    rows = [_row(item, f"row {index} ({item.get('id', '?')})", groups, severity, seen) for index, item in enumerate(raw_rows)]
    signal_rows = [
        _row(item, f"signal {index} ({item.get('id', '?')})", groups, severity, seen)
        for index, item in enumerate(data.get("signals") or [])
    ]
    if any(not row.signal for row in signal_rows):
        raise TableError("every entry of 'signals' sets a signal")
    return DecisionTable(
        rows=rows,
        severity=severity,
        priority=vocabulary.priority,
        intent=vocabulary.intent,
        signals=frozenset(row.signal for row in rows + signal_rows if row.signal),
        signal_rows=signal_rows,
    )


def _row(item: dict, where: str, groups: dict, severity: tuple[str, ...], seen: set[str]) -> Row:
    """One row of the table (or of its ``signals`` section), checked."""
    if not item.get("id") or item["id"] in seen:
        raise TableError(f"{where}: needs a unique id")
    seen.add(item["id"])
    if not item.get("rationale"):
        raise TableError(f"{where}: needs a one-line rationale")
    reason, signal = item.get("reason"), item.get("signal")
    if (reason is None) == (signal is None):
        raise TableError(f"{where}: needs exactly one of reason and signal")
    if reason is not None and reason not in {REASON_NONE, DEFER} and reason not in severity:
        raise TableError(f"{where}: unknown reason {reason!r}")
    if not item.get("finding"):
        raise TableError(f"{where}: needs finding")
    unknown = set(item) - {"id", "finding", "when", "any", "unless", "reason", "signal", "rationale"}
    if unknown:
        raise TableError(f"{where}: unknown keys {sorted(unknown)}")
    return Row(
        id=item["id"],
        findings=_expand(item["finding"], groups, where),
        when=_expand(item.get("when") or [], groups, where),
        any=_expand(item.get("any") or [], groups, where),
        unless=_expand(item.get("unless") or [], groups, where),
        reason=None if reason in (None, REASON_NONE, DEFER) else reason,
        signal=signal,
        rationale=item["rationale"],
        outcome=f"signal:{signal}" if signal else reason,
    )


def load_table(path: Path) -> DecisionTable:
    """Read ``decision_table.yml``, with the emergency groups of the red-flag catalogue beside it."""
    path = Path(path)
    groups = catalogue_in(path.parent).groups() if (path.parent / CATALOGUE_DIR).is_dir() else None
    return parse_table(yaml.safe_load(path.read_text(encoding="utf-8")), groups)


@lru_cache(maxsize=1)
def default_table() -> DecisionTable:
    """The decision table in force (``RULES_DIR``), read once per process: severity order,
    priorities and staff intents for code that does not run the screen (the action server)."""
    return load_table(RULES_DIR / TABLE_FILE)
