"""Metamorphic pass rates of the safety screen: ``python -m bot.evaluation.metamorphic``.

Runs the screen alone (``bot.safety.screen.screen_text``: the project's spaCy pipeline and
the safety rules, no Rasa model) on the variants of :mod:`bot.evaluation.variants` and
checks five relations (issue 14, item 4):

* a. neutral context never turns an ordinary question into a staff-bound one;
* b. casing, apostrophes, punctuation, filler and typos never turn a staff-bound message
  into an ordinary one, nor an emergency into a non-emergency;
* c1. a red flag asked about as a general risk is never an emergency;
* c2. the same red flag reported as happening after a treatment always is;
* d. a ruled-out condition, medicine or device never escalates on its own.

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

from bot.evaluation import variants as v

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


def load_screen() -> Screen:
    """The screen alone: ``bot.safety.screen.screen_text`` (spaCy pipeline + safety rules, no Rasa model)."""
    from bot.safety.screen import screen_text

    return screen_text


class CachedScreen:
    """Each distinct text is screened once per run."""

    def __init__(self, screen: Screen) -> None:
        self._screen = screen
        self._cache: dict[str, Any] = {}

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


def run(screen: Optional[Screen] = None) -> dict[str, Result]:
    """Generate every variant, screen it and check its invariant."""
    cached = CachedScreen(screen or load_screen())
    results = {inv.key: Result(inv) for inv in INVARIANTS}
    suite = v.suite_seeds()
    faq = v.faq_seeds()
    ordinary = [s for s in suite if s.expect == "ordinary"]
    staff = [s for s in suite if s.expect == "staff"]

    _check(results["a"], cached, v.neutral_variants(ordinary, faq),
           premise=lambda seed: seed is None, relation=lambda seed, got: got is None)

    evidence = {s.text: cached.evidence_texts(s.text) for s in staff}
    _check(results["b"], cached, v.noise_variants(staff, evidence),
           premise=lambda seed: seed is not None,
           relation=lambda seed, got: got is not None and (seed != "emergency" or got == "emergency"))

    risk, report = v.red_flag_variants()
    _check(results["c1"], cached, risk, premise=None, relation=lambda seed, got: got != "emergency")
    _check(results["c2"], cached, report, premise=None, relation=lambda seed, got: got == "emergency")

    _check(results["d"], cached, v.negation_variants(faq),
           premise=lambda seed: seed is None, relation=lambda seed, got: got is None)
    return results


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
    cached = CachedScreen(screen or load_screen())
    rows = []
    for label, seeds in (
        ("safety suites: ordinary cases", [s for s in v.suite_seeds() if s.expect == "ordinary"]),
        ("evaluation sets: FAQ questions", v.faq_seeds()),
    ):
        reasons = [cached.reason(s.text) for s in seeds]
        rows.append(Reach(label, len(reasons), sum(r is not None for r in reasons), reasons.count("emergency")))
    for key, label in (("a", "variants a (neutral context)"), ("c1", "variants c1 (risk questions)"),
                       ("d", "variants d (negated findings)")):
        reasons = [c.reason for c in results[key].checks]
        rows.append(Reach(label, len(reasons), sum(r is not None for r in reasons), reasons.count("emergency")))
    return rows


def false_escalation_rate(results: dict[str, Result]) -> tuple[int, int]:
    """(staff-bound, total) over every variant that should stay ordinary (a, c1, d)."""
    checks = [c for key in ("a", "c1", "d") for c in results[key].checks]
    return sum(c.reason is not None for c in checks), len(checks)


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
    args = parser.parse_args(argv)
    from bot.evaluation.results import write_results

    started = time.perf_counter()
    screen = CachedScreen(load_screen())
    results = run(screen)
    reach = ordinary_reach(results, screen)
    print_report(results, reach, args.show)
    print(f"\n  {time.perf_counter() - started:.1f}s")
    write_results("metamorphic.json", {
        "invariants": {key: r.as_dict() for key, r in results.items()},
        "ordinary_reach": [dict(r.__dict__, rate=r.rate) for r in reach],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
