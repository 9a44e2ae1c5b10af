"""ConText (Harkema et al. 2009): which modifiers (negation, hypothetical, ...) apply to which findings.

The algorithm medspaCy's ``ConText`` implements, written here on spaCy's ``Matcher``
(docs/design/safety-context.md says why medspaCy itself is not installed). Rules are
read from a JSON file in medspaCy's format (``{"context_rules": [...]}``), extended with
``terminated_by``:

1. Every rule's trigger is matched: ``pattern`` (a spaCy token pattern, e.g. on ``LEMMA``)
   or, without one, ``literal`` (lower-cased words).
2. A trigger inside a finding is dropped first (the finding "can't breathe" holds no
   negation) unless its rule says ``metadata.within_findings`` ("really sore"). Then
   overlapping triggers are pruned: the longest wins, the earlier on a tie (a rule with
   ``metadata.coexists`` stays out of this contest: "my wife" is someone else even where
   "my wife's ... is" is a current report). A ``PSEUDO``
   rule ("won't stop" is not a negation) only exists to win that contest; it modifies
   nothing.
3. Each remaining trigger's scope runs in its ``direction`` (``FORWARD``, ``BACKWARD``,
   ``BIDIRECTIONAL``) to the end of its sentence, at most ``max_scope`` tokens, and stops
   at the nearest terminator: a ``TERMINATE`` rule of category ``TERMINATE``, or a trigger
   whose category is in the rule's ``terminated_by`` (so ``TERMINATE`` rules of another
   category, such as ``COMMA``, end only the rules that name them).
4. A finding whose first token lies in a trigger's scope, and whose label the rule allows
   (``allowed_types`` / ``excluded_types``), gets the rule's category; ``max_targets``
   keeps only the nearest findings. A clause the semantic detector read as a finding keeps
   the triggers inside it and gets every trigger whose scope reaches it.

Two differences from medspaCy, both deliberate: a terminator ends a scope even when
``max_scope`` already clipped it (medspaCy's ``limit_scope`` misses that case, which could
hide an emergency); and a trigger of the same category does not end a scope (in "worried
about chest pain - how often does that happen?" the later question triggers would otherwise
cut the earlier ones off from the finding). A rule may list in ``metadata.blocked_by`` the
finding labels its trigger may not overlap (by default: may not lie inside a health finding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from spacy.matcher import Matcher
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

DIRECTIONS = {"FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"}
TERMINATE = "TERMINATE"
PSEUDO = "PSEUDO"


class RuleError(ValueError):
    """A context rule is malformed."""


@dataclass(frozen=True)
class ContextRule:
    """One trigger: a literal or token pattern, its category, direction and scope limits."""

    literal: str
    category: str
    direction: str
    #: The token pattern as JSON text (kept as text so the rule stays hashable).
    pattern: Optional[str] = None
    max_scope: Optional[int] = None
    max_targets: Optional[int] = None
    allowed_types: frozenset = frozenset()
    excluded_types: frozenset = frozenset()
    terminated_by: frozenset = frozenset()
    #: ``metadata.scope: message``: the scope is the whole message, not the sentence, and no
    #: terminator ends it ("... stopped now, but thought I should tell you").
    message_scope: bool = False
    #: ``metadata.within_findings``: the trigger may lie inside a finding ("really sore" holds
    #: its own severity); other triggers inside a finding are dropped.
    within_findings: bool = False
    #: ``metadata.coexists``: the trigger takes no part in the overlap contest (who is
    #: affected, "my wife", holds beside "my wife's ... is" as a current report).
    coexists: bool = False
    #: ``metadata.blocked_by``: finding labels this trigger may not overlap (``None``: the
    #: caller's default, no trigger inside a health finding).
    blocked_by: Optional[frozenset] = None

    def token_pattern(self) -> list[dict]:
        """The spaCy ``Matcher`` pattern (a literal becomes one ``LOWER`` per word)."""
        if self.pattern is not None:
            return json.loads(self.pattern)
        return [{"LOWER": word} for word in self.literal.lower().split()]

    def allows(self, label: str) -> bool:
        """Whether a finding with ``label`` may be modified by this rule."""
        if self.allowed_types and label not in self.allowed_types:
            return False
        return label not in self.excluded_types


def parse_rule(item: dict, where: str = "") -> ContextRule:
    """One rule from its JSON form (medspaCy's keys plus ``terminated_by``)."""
    try:
        literal, category, direction = item["literal"], item["category"].upper(), item["direction"].upper()
    except KeyError as exc:
        raise RuleError(f"{where}: missing {exc.args[0]!r}") from exc
    if direction not in DIRECTIONS:
        raise RuleError(f"{where}: direction {direction!r} is not one of {sorted(DIRECTIONS)}")
    unknown = set(item) - {
        "literal", "category", "direction", "pattern", "max_scope", "max_targets",
        "allowed_types", "excluded_types", "terminated_by", "metadata",
    }
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
    pattern = item.get("pattern")
    if pattern is not None and not (isinstance(pattern, list) and all(isinstance(t, dict) for t in pattern)):
        raise RuleError(f"{where}: pattern must be a list of token dicts")
    return ContextRule(
        literal=literal,
        category=category,
        direction=direction,
        pattern=json.dumps(pattern) if pattern is not None else None,
        max_scope=item.get("max_scope"),
        max_targets=item.get("max_targets"),
        allowed_types=frozenset(item.get("allowed_types") or ()),
        excluded_types=frozenset(item.get("excluded_types") or ()),
        terminated_by=frozenset(c.upper() for c in item.get("terminated_by") or ()),
        message_scope=(item.get("metadata") or {}).get("scope") == "message",
        within_findings=bool((item.get("metadata") or {}).get("within_findings")),
        coexists=bool((item.get("metadata") or {}).get("coexists")),
        blocked_by=frozenset(item["metadata"]["blocked_by"]) if "blocked_by" in (item.get("metadata") or {}) else None,
    )


def load_rules(path: Path) -> list[ContextRule]:
    """Read a medspaCy-format rule file (``{"context_rules": [...]}``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [parse_rule(item, f"{Path(path).name} rule {i}") for i, item in enumerate(data["context_rules"])]


@dataclass
class Modifier:
    """A matched trigger and the token range it modifies."""

    rule: ContextRule
    start: int
    end: int
    scope_start: int = 0
    scope_end: int = 0

    @property
    def category(self) -> str:
        return self.rule.category

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


@dataclass
class Target:
    """What ConText needs of a finding: its label and token range."""

    label: str
    start: int
    end: int
    modifiers: list[Modifier] = field(default_factory=list)
    #: A whole clause read by meaning (the semantic detector): the triggers inside it stay,
    #: and a trigger modifies it when its scope reaches any of its tokens.
    clause: bool = False

    @property
    def categories(self) -> set[str]:
        return {m.category for m in self.modifiers}


class ConText:
    """Applies a rule set to a document's findings."""

    def __init__(self, rules: Sequence[ContextRule], vocab: Vocab) -> None:
        self.rules = list(rules)
        self._matcher = Matcher(vocab)
        for index, rule in enumerate(self.rules):
            try:
                self._matcher.add(str(index), [rule.token_pattern()])
            except Exception as exc:  # spaCy raises ValueError / MatchPatternError subclasses
                raise RuleError(f"rule {index} ({rule.literal!r}): bad pattern ({exc})") from exc

    def modifiers(self, doc: Doc, findings: Iterable[Target] = (), blocking: Iterable[str] = ()) -> list[Modifier]:
        """The triggers in ``doc`` after pruning, with their scopes set.

        A trigger inside a finding whose label is in ``blocking`` (or in the rule's
        ``blocked_by``) is dropped, unless the rule is ``within_findings``.
        """
        findings = list(findings)
        default = frozenset(blocking)
        found = [
            Modifier(self.rules[int(self._matcher.vocab.strings[key])], start, end)
            for key, start, end in self._matcher(doc)
        ]

        def inside(m: Modifier) -> bool:
            if m.rule.blocked_by is not None:
                # The rule's own list: the trigger may not even overlap such a finding.
                return any(t.label in m.rule.blocked_by and m.overlaps(t.start, t.end) for t in findings)
            return any(t.label in default and not t.clause and t.start <= m.start and m.end <= t.end for t in findings)

        # Triggers a finding swallows never take part; then the longest wins, the earlier on a
        # tie, and PSEUDO triggers only take part in this contest.
        found = [m for m in found if m.rule.within_findings or not inside(m)]
        found.sort(key=lambda m: (-(m.end - m.start), m.start))
        kept: list[Modifier] = [m for m in found if m.rule.coexists]
        for modifier in (m for m in found if not m.rule.coexists):
            if not any(k.overlaps(modifier.start, modifier.end) for k in kept if not k.rule.coexists):
                kept.append(modifier)
        kept = [m for m in kept if m.rule.direction != PSEUDO]
        kept.sort(key=lambda m: m.start)
        for modifier in kept:
            self._set_scope(doc, modifier, kept)
        return kept

    def apply(self, doc: Doc, findings: Sequence[Target], blocking: Optional[Iterable[str]] = None) -> list[Modifier]:
        """Attach to each finding the modifiers whose scope covers it; returns all modifiers.

        ``blocking``: finding labels whose text cannot hold a trigger (all labels by default).
        """
        labels = {t.label for t in findings} if blocking is None else set(blocking)
        modifiers = self.modifiers(doc, findings, labels)
        for modifier in modifiers:
            if modifier.rule.direction == TERMINATE:
                continue
            covered = [
                t for t in findings
                if modifier.rule.allows(t.label) and (
                    modifier.scope_start <= t.start < modifier.scope_end
                    or t.clause and modifier.scope_start < t.end and t.start < modifier.scope_end
                )
            ]
            if modifier.rule.max_targets is not None:
                covered.sort(key=lambda t: min(abs(t.start - modifier.end), abs(modifier.start - t.end)))
                covered = covered[: modifier.rule.max_targets]
            for target in covered:
                target.modifiers.append(modifier)
        return modifiers

    @staticmethod
    def _sentence(doc: Doc, index: int) -> tuple[int, int]:
        if doc.has_annotation("SENT_START"):
            sent: Span = doc[index].sent
            return sent.start, sent.end
        return 0, len(doc)

    def _set_scope(self, doc: Doc, modifier: Modifier, others: Sequence[Modifier]) -> None:
        rule = modifier.rule
        sent_start, sent_end = (0, len(doc)) if rule.message_scope else self._sentence(doc, modifier.start)
        start, end = modifier.start, modifier.end
        if rule.direction == TERMINATE:
            modifier.scope_start = modifier.scope_end = start
            return
        forward = rule.direction in {"FORWARD", "BIDIRECTIONAL"}
        backward = rule.direction in {"BACKWARD", "BIDIRECTIONAL"}
        scope_start = start if not backward else sent_start
        scope_end = end if not forward else sent_end
        if rule.max_scope is not None:
            if backward:
                scope_start = max(scope_start, start - rule.max_scope)
            if forward:
                scope_end = min(scope_end, end + rule.max_scope)
        for other in others:
            if rule.message_scope or other is modifier or not self._terminates(other, rule):
                continue
            if forward and end <= other.start < scope_end:
                scope_end = other.start
            if backward and scope_start < other.end <= start:
                scope_start = other.end
        modifier.scope_start, modifier.scope_end = scope_start, scope_end

    @staticmethod
    def _terminates(other: Modifier, rule: ContextRule) -> bool:
        if other.rule.direction == TERMINATE and other.category == TERMINATE:
            return True
        return other.category in rule.terminated_by
