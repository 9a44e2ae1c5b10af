"""Metamorphic pass rates of the safety screen: ``python -m evaluation.metamorphic``.

Runs the screen alone (``bot.core.safety.screen.screen_text``: the project's spaCy pipeline and
the safety rules, no Rasa model) on the variants of :mod:`evaluation.variants` and
checks five relations (issue 14, item 4):

* a. neutral context never turns an ordinary question into a staff-bound one;
* b. casing, apostrophes, punctuation, filler and typos never turn a staff-bound message
  into an ordinary one, nor an emergency into a non-emergency;
* c1. a red flag asked about as a general risk is never an emergency;
* c2. the same red flag reported as happening after a treatment always is;
* d. a ruled-out condition, medicine or device never escalates on its own;
* e. every report example of the red-flag catalogue stays an emergency in shorthand and told
  by someone else (:func:`evaluation.variants.catalogue_variants`);
* f1. a red flag reported in Dutch, French, German, Polish or Spanish is an emergency;
* f2. their negated, risk and ordinary examples are not (:func:`~evaluation.variants.language_variants`).

The screen runs as the Rasa process runs it: listed wordings, the semantic detector on the
pipeline's MiniLM encoder, and the language net (``--lexical-only`` turns the semantic
detector off). Recall per red-flag class is printed for e and f, and the ordinary questions
that reach staff with the semantic detector are compared with those without it.

A relation is checked only where its premise holds for the seed (an ordinary question the
screen already escalates is a suite or evaluation error, counted apart as ``excluded``).
Prints a table of pass rates and the number of ordinary questions (suites, evaluation sets,
variants) that reach staff or the emergency path; writes ``results/metamorphic.json``.
``tests/safety/test_metamorphic.py`` asserts the same relations in ``make test``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from evaluation import variants as v

Screen = Callable[[str], Any]


@dataclass(frozen=True)
class Invariant:
    """One metamorphic relation."""

    key: str
    family: str
    statement: str


INVARIANTS = (
    Invariant("a", "neutral", "neutral context never makes an ordinary question staff-bound"),
    Invariant("b", "noise", "typos, casing, filler never make a staff-bound message ordinary (or an emergency less)"),
    Invariant("c1", "risk", "a red flag asked about as a risk is never an emergency"),
    Invariant("c2", "report", "a red flag reported after a treatment is always an emergency"),
    Invariant("d", "negation", "a negated finding never escalates on its own"),
    Invariant("e", "catalogue", "a catalogue report stays an emergency in shorthand and told by someone else"),
    Invariant("f1", "language", "a red flag reported in another language is an emergency"),
    Invariant("f2", "language", "a question, negation or ordinary message in another language is not"),
)


@dataclass(frozen=True)
class Check:
    """The screen's answer on one variant, against the relation."""

    variant: v.Variant
    seed_reason: Optional[str]
    reason: Optional[str]
    passed: bool

    def describe(self) -> str:
        """One line for a failure list (seed, variant and both verdicts)."""
        seed = "" if self.variant.seed.text == self.variant.text else f"{self.variant.seed.text!r} ({self.seed_reason}) -> "
        return f"[{self.variant.transform}] {seed}{self.variant.text!r} -> {self.reason}"


@dataclass
class Result:
    """Checks of one invariant."""

    invariant: Invariant
    #: Distinct seeds (or curated terms, for c1, c2 and d) the variants came from.
    cases: int = 0
    checks: list[Check] = field(default_factory=list)
    #: Seeds left out because the screen's verdict on the seed itself breaks the premise.
    excluded: list[str] = field(default_factory=list)

    @property
    def variants(self) -> int:
        return len(self.checks)

    @property
    def passes(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def rate(self) -> float:
        return self.passes / self.variants if self.variants else 0.0

    def by_transform(self) -> dict[str, tuple[int, int]]:
        """(passes, variants) per transformation."""
        total = Counter(c.variant.transform for c in self.checks)
        passed = Counter(c.variant.transform for c in self.checks if c.passed)
        return {t: (passed[t], n) for t, n in sorted(total.items())}

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "statement": self.invariant.statement,
            "cases": self.cases,
            "variants": self.variants,
            "passes": self.passes,
            "rate": self.rate,
            "excluded_seeds": self.excluded,
            "by_transform": self.by_transform(),
            "failures": [c.describe() for c in self.failures],
        }


def load_screen(semantic: bool = True) -> Any:
    """The screen alone (spaCy pipeline + safety rules + language net, no Rasa model), with the
    semantic detector on the pipeline's MiniLM encoder unless ``semantic`` is false."""
    from bot.core.safety.screen import Screen, pipeline

    screen = Screen(pipeline())
    if semantic:
        from bot.assistant.nlp.sentence_featurizer import DEFAULT_MODEL_PATH, load_encoder
        from bot.core.settings import REPO_ROOT

        screen.attach_encoder(load_encoder(str(REPO_ROOT / DEFAULT_MODEL_PATH), 128).encode)
    return screen


class CachedScreen:
    """Each distinct text is screened once per run."""

    def __init__(self, screen: Screen) -> None:
        self._screen = screen
        self._cache: dict[str, Any] = {}

    def prime(self, texts: Iterable[str]) -> None:
        """Encode the semantic detector's clauses of ``texts`` in batches (when the screen can)."""
        prime = getattr(self._screen, "prime", None)
        if prime is not None:
            prime([t for t in dict.fromkeys(texts) if t not in self._cache])

    def __call__(self, text: str) -> Any:
        if text not in self._cache:
            self._cache[text] = self._screen(text)
        return self._cache[text]

    def reason(self, text: str) -> Optional[str]:
        """The verdict's reason (``None``: ordinary)."""
        return self(text).reason

    def evidence_texts(self, text: str) -> list[str]:
        """The texts of the findings behind the verdict: health terms, and whatever finding
        gave the reason ("who shouldn't have it", "put me through"). Context evidence such as
        "since my session" is left out: the typo transform may edit it."""
        return [
            e.text for e in getattr(self(text), "evidence", [])
            if getattr(e, "text", None)
            and (getattr(e, "label", None) in v.HEALTH_LABELS or getattr(e, "gives_reason", False))
        ]


def _check(result: Result, screen: CachedScreen, variants: Iterable[v.Variant], premise, relation) -> None:
    """Check ``relation(seed_reason, reason)`` on each variant whose seed satisfies ``premise``."""
    variants = list(variants)
    screen.prime([x.text for x in variants] + [x.seed.text for x in variants])
    seeds: set[str] = set()
    excluded: set[str] = set()
    for variant in variants:
        seed_reason = screen.reason(variant.seed.text) if premise is not None else None
        if premise is not None and not premise(seed_reason):
            excluded.add(f"{variant.seed.text} -> {seed_reason}")
            continue
        seeds.add(variant.term or variant.seed.text)
        reason = screen.reason(variant.text)
        result.checks.append(Check(variant, seed_reason, reason, relation(seed_reason, reason)))
    result.cases = len(seeds)
    result.excluded = sorted(excluded)


def run(screen: Optional[Screen] = None, keys: Optional[Iterable[str]] = None) -> dict[str, Result]:
    """Generate every variant of the invariants ``keys`` (default: all), screen it and check its invariant."""
    cached = screen if isinstance(screen, CachedScreen) else CachedScreen(screen or load_screen())
    wanted = {inv.key for inv in INVARIANTS} if keys is None else set(keys)
    results = {inv.key: Result(inv) for inv in INVARIANTS if inv.key in wanted}
    suite = v.suite_seeds()
    faq = v.faq_seeds()
    ordinary = [s for s in suite if s.expect == "ordinary"]
    staff = [s for s in suite if s.expect == "staff"]

    if "a" in wanted:
        _check(results["a"], cached, v.neutral_variants(ordinary, faq),
               premise=lambda seed: seed is None, relation=lambda seed, got: got is None)

    if "b" in wanted:
        evidence = {s.text: cached.evidence_texts(s.text) for s in staff}
        _check(results["b"], cached, v.noise_variants(staff, evidence),
               premise=lambda seed: seed is not None,
               relation=lambda seed, got: got is not None and (seed != "emergency" or got == "emergency"))

    if wanted & {"c1", "c2"}:
        risk, report = v.red_flag_variants()
        if "c1" in wanted:
            _check(results["c1"], cached, risk, premise=None, relation=lambda seed, got: got != "emergency")
        if "c2" in wanted:
            _check(results["c2"], cached, report, premise=None, relation=lambda seed, got: got == "emergency")

    if "d" in wanted:
        _check(results["d"], cached, v.negation_variants(faq),
               premise=lambda seed: seed is None, relation=lambda seed, got: got is None)

    if "e" in wanted:
        from bot.core.safety.catalogue import catalogue_in
        from bot.core.safety.decision import RULES_DIR

        _check(results["e"], cached, v.catalogue_variants(catalogue_in(RULES_DIR)), premise=None,
               relation=lambda seed, got: got == "emergency")
    if wanted & {"f1", "f2"}:
        reports, not_reports = v.language_variants()
        if "f1" in wanted:
            _check(results["f1"], cached, reports, premise=None, relation=lambda seed, got: got == "emergency")
        if "f2" in wanted:
            _check(results["f2"], cached, not_reports, premise=None, relation=lambda seed, got: got != "emergency")
    return results


def failure_report(result: Result, shown: int = 25) -> str:
    """The invariant, its failures by transformation, and the first ``shown`` failing variants."""
    lines = [f"{result.invariant.key}: {result.invariant.statement}",
             f"{len(result.failures)} of {result.variants} variants ({result.cases} cases) fail; by transformation: "
             + ", ".join(f"{t} {n - p}/{n}" for t, (p, n) in result.by_transform().items() if p < n)]
    lines += [f"  {check.describe()}" for check in result.failures[:shown]]
    return "\n".join(lines)


def recall_by_class(results: dict[str, Result]) -> dict[str, dict[str, tuple[int, int]]]:
    """Per family (e: English catalogue and variants; f1: other languages) and red-flag class,
    (emergencies, reports): the recall of the emergency path."""
    table: dict[str, dict[str, tuple[int, int]]] = {}
    for key in ("e", "f1"):
        rows: dict[str, tuple[int, int]] = {}
        for check in results[key].checks:
            name = check.variant.category or "someone else"
            hit, total = rows.get(name, (0, 0))
            rows[name] = (hit + (check.reason == "emergency"), total + 1)
        table[key] = dict(sorted(rows.items()))
    return table


@dataclass
class Reach:
    """How many ordinary questions of one kind reach staff, and the emergency path."""

    label: str
    total: int
    staff: int
    emergency: int

    @property
    def rate(self) -> float:
        return self.staff / self.total if self.total else 0.0


def ordinary_reach(results: dict[str, Result], screen: Optional[Screen] = None) -> list[Reach]:
    """Ordinary questions (suites, evaluation sets' FAQ questions, ordinary variants) the screen escalates."""
    cached = screen if isinstance(screen, CachedScreen) else CachedScreen(screen or load_screen())
    rows = []
    for label, seeds in (
        ("safety suites: ordinary cases", [s for s in v.suite_seeds() if s.expect == "ordinary"]),
        ("evaluation sets: FAQ questions", v.faq_seeds()),
    ):
        cached.prime(s.text for s in seeds)
        reasons = [cached.reason(s.text) for s in seeds]
        rows.append(Reach(label, len(reasons), sum(r is not None for r in reasons), reasons.count("emergency")))
    for key, label in (("a", "variants a (neutral context)"), ("c1", "variants c1 (risk questions)"),
                       ("d", "variants d (negated findings)")):
        reasons = [c.reason for c in results[key].checks]
        rows.append(Reach(label, len(reasons), sum(r is not None for r in reasons), reasons.count("emergency")))
    return rows


def newly_reached(results: dict[str, Result], screen: CachedScreen, lexical: CachedScreen) -> dict[str, list[str]]:
    """The ordinary questions (suites, evaluation sets' FAQ questions, variants a, c1, d) that
    reach staff, and the emergency path, with the semantic detector and not without it."""
    texts = list(dict.fromkeys(
        [s.text for s in v.suite_seeds() if s.expect == "ordinary"] + [s.text for s in v.faq_seeds()]
        + [c.variant.text for key in ("a", "c1", "d") for c in results[key].checks]
    ))
    lexical.prime(texts)
    staff = [t for t in texts if screen.reason(t) is not None and lexical.reason(t) is None]
    emergency = [t for t in texts if screen.reason(t) == "emergency" and lexical.reason(t) != "emergency"]
    return {"texts": [str(len(texts))], "staff": staff, "emergency": emergency}


def false_escalation_rate(results: dict[str, Result]) -> tuple[int, int]:
    """(staff-bound, total) over every variant that should stay ordinary (a, c1, d)."""
    checks = [c for key in ("a", "c1", "d") for c in results[key].checks]
    return sum(c.reason is not None for c in checks), len(checks)


def print_recall(recall: dict[str, dict[str, tuple[int, int]]], newly: Optional[dict[str, list[str]]], show: int) -> None:
    """Recall per red-flag class, and what the semantic detector newly sends to staff."""
    for key, title in (("e", "English: catalogue examples, shorthand, someone else"), ("f1", "Other languages")):
        print(f"\n== Emergency recall per red-flag class ({title})")
        for name, (hit, total) in recall[key].items():
            print(f"  {name:<18} {hit:>4}/{total:<4} {hit / total if total else 0:.3f}")
    if newly is not None:
        print(f"\n== Ordinary questions ({newly['texts'][0]}) that newly reach staff with the semantic detector:"
              f" {len(newly['staff'])}, of which the emergency path: {len(newly['emergency'])}")
        for text in newly["staff"][:show]:
            print(f"    {text!r}")


def print_report(results: dict[str, Result], reach: list[Reach], show: int) -> None:
    """The pass-rate table, the per-transformation breakdown of failures, and the reach table."""
    print("\n== Metamorphic tests of the safety screen (screen alone, no Rasa model)")
    print(f"  {'invariant':<4} {'cases':>6} {'variants':>9} {'passes':>7} {'rate':>7}  statement")
    for result in results.values():
        inv = result.invariant
        print(f"  {inv.key:<4} {result.cases:>6} {result.variants:>9} {result.passes:>7} {result.rate:>7.3f}  "
              f"{inv.statement}")
        if result.excluded:
            print(f"       ({len(result.excluded)} seeds left out: the screen's verdict on the seed itself)")
    for result in results.values():
        if not result.failures:
            continue
        broken = {t: (p, n) for t, (p, n) in result.by_transform().items() if p < n}
        print(f"\n  {result.invariant.key}: failures by transformation: "
              + ", ".join(f"{t} {n - p}/{n}" for t, (p, n) in broken.items()))
        for check in result.failures[:show]:
            print(f"    FAIL {check.describe()}")
    staff, total = false_escalation_rate(results)
    print(f"\n  ordinary variants (a, c1, d) escalated: {staff}/{total} = {staff / total if total else 0:.3f}")
    print("\n== Ordinary questions that reach staff or the emergency path (screen alone)")
    print(f"  {'':<34} {'total':>6} {'staff':>6} {'rate':>7} {'emergency':>10}")
    for row in reach:
        print(f"  {row.label:<34} {row.total:>6} {row.staff:>6} {row.rate:>7.3f} {row.emergency:>10}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; always 0 (``make test`` asserts, this reports)."""
    parser = argparse.ArgumentParser(description="Metamorphic pass rates of the safety screen.")
    parser.add_argument("--show", type=int, default=10, help="failures to list per invariant")
    parser.add_argument("--lexical-only", action="store_true", help="the screen without the semantic detector")
    args = parser.parse_args(argv)
    from evaluation.results import write_results

    started = time.perf_counter()
    screen = CachedScreen(load_screen(semantic=not args.lexical_only))
    results = run(screen)
    reach = ordinary_reach(results, screen)
    print_report(results, reach, args.show)
    recall = recall_by_class(results)
    newly = None if args.lexical_only else newly_reached(results, screen, CachedScreen(load_screen(semantic=False)))
    print_recall(recall, newly, args.show)
    print(f"\n  {time.perf_counter() - started:.1f}s")
    write_results("metamorphic.json", {
        "invariants": {key: r.as_dict() for key, r in results.items()},
        "ordinary_reach": [dict(r.__dict__, rate=r.rate) for r in reach],
        "recall_by_class": {k: {c: list(x) for c, x in rows.items()} for k, rows in recall.items()},
        "newly_staff_bound_by_semantic_detector": None if newly is None else {k: len(x) for k, x in newly.items() if k != "texts"},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
