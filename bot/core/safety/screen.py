"""The safety screen, run on every patient message, top to bottom:

1. **findings** (:mod:`bot.core.safety.findings`): health terms of the entity ruler and the
   screen's own patterns (``data/safety/findings.jsonl``);
2. **context** (:mod:`bot.core.safety.context`): ConText assigns each finding categories such
   as NEGATED, HYPOTHETICAL, RISK_QUESTION, CURRENT_REPORT, HISTORICAL, OTHER_PERSON
   (``data/safety/context_rules.json``);
3. **verdict** (:mod:`bot.core.safety.decision`): the decision table
   (``data/safety/decision_table.yml``) turns each finding and its context into a reason,
   the most serious of which is the message's;
4. **routing** (:mod:`bot.core.safety.routing`): which intent the assistant acts on.

Before step 1 the message is normalised (``data/safety/normalise.yml``): lower case,
straight apostrophes, hesitation words dropped, misspelt anchor words ("sinec my sessoin")
read as meant; then parsed by the project's spaCy pipeline (``build/spacy``), loaded once.
The screen takes text, not Rasa's parse, so it gives the same verdict wherever it runs.

The rule files are read at run time (``SAFETY_RULES_DIR`` or ``data/safety`` of the
repository): changing them needs no retraining of the Rasa model.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import yaml
from spacy.language import Language
from spacy.lookups import Lookups, Table
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc

from bot.core.paths import SPACY_PIPELINE_DIR
from bot.core.safety.catalogue import Catalogue, catalogue_in
from bot.core.safety.context import ConText, load_rules
from bot.core.safety.decision import RULES_DIR, TABLE_FILE, DecisionTable, default_table, load_table
from bot.core.safety.findings import Finding, FindingMatcher, load_patterns
from bot.core.safety.languages import LanguageNet, identify, identify_for_safety, leading_language
from bot.core.safety.routing import describe, is_emergency  # noqa: F401  (is_emergency re-exported: evaluation and actions read it here)
from bot.core.safety.semantic import SEMANTIC_FILE, Encoder, SemanticConfig, SemanticDetector
from bot.core.safety.verdict import Evidence, Verdict

NORMALISE_FILE = "normalise.yml"
LANGUAGES_FOLDER = "languages"
FINDINGS_FILE = "findings.jsonl"
CONTEXT_FILE = "context_rules.json"
#: Findings whose text can hold no trigger of their own ("can't breathe" is not negated by its "n't").
HEALTH_LABELS = frozenset({"CONDITION", "MEDICATION", "DEVICE", "BODY_REGION", "SYMPTOM", "RED_FLAG"})
#: The verdict of a red flag in another language: the language catalogue judged its context.
LANGUAGE_RULE = "other_language_red_flag"
LANGUAGE_RATIONALE = (
    "A red flag reported in another language (data/safety/languages/): urgent guidance in that "
    "language first, an urgent escalation, whatever the class."
)
#: Findings whose clause the semantic detector leaves alone: it reads only clauses in which no
#: listed health word was found (a listed after-effect, "my arm is really sore", is placed
#: by its wording; meaning alone would bring an arm that is sore near an arm that is weak).
SEMANTIC_LEAVES = frozenset({"RED_FLAG", "SYMPTOM", "CONDITION", "MEDICATION", "DEVICE"})
#: Categories that make a message a question (for the routing of unrelated health questions).
QUESTION_CATEGORIES = frozenset({"HYPOTHETICAL", "RISK_QUESTION", "TREATMENT_SEEKING"})


def one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one letter added, dropped or changed, or two adjacent letters swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[i:] == long_[i + 1:]


class Normaliser:
    """Lower case, straight quotes, shorthand spelt out, no fillers, misspelt anchor words corrected (``normalise.yml``)."""

    def __init__(self, config: dict, nlp: Language, lemmas: Table) -> None:
        self._replace = dict(config.get("replace") or {})
        self._words = {str(k).lower(): str(v).lower() for k, v in (config.get("words") or {}).items()}
        self._fillers = frozenset(config.get("fillers") or ())
        self._conditional = [
            (tuple(item["words"]), frozenset(item.get("keep_after") or ()), frozenset(item.get("keep_before") or ()))
            for item in config.get("conditional_fillers") or ()
        ]
        self._closing = sorted(config.get("closing_fillers") or (), key=len, reverse=True)
        self._anchors = tuple(config.get("anchor_words") or ())
        self._min_length = int(config.get("min_length", 5))
        self._tokenizer = nlp.tokenizer
        # English words the lemma table knows (its forms and their lemmas) are never "corrected".
        self._lemmas = lemmas
        self._base_forms = {w for w in lemmas.values() if isinstance(w, str)}

    def _known(self, word: str) -> bool:
        return word in self._lemmas or word in self._base_forms

    def _correct(self, word: str) -> str:
        if len(word) < self._min_length or not word.isalpha() or word in self._anchors or self._known(word):
            return word
        return next((anchor for anchor in self._anchors if one_edit_apart(word, anchor)), word)

    def _filler_at(self, words: list[str], i: int, previous: str) -> int:
        """How many words from ``i`` are a filler (0: none)."""
        if words[i] in self._fillers:
            return 1
        for phrase, keep_after, keep_before in self._conditional:
            n = len(phrase)
            if tuple(words[i:i + n]) != phrase:
                continue
            following = words[i + n] if i + n < len(words) else ""
            if previous in keep_after or following in keep_before:
                return 0
            return n
        return 0

    def __call__(self, text: str) -> str:
        for old, new in self._replace.items():
            text = text.replace(old, new)
        tokens = list(self._tokenizer(text.lower()))
        words = [t.text for t in tokens]
        parts: list[str] = []
        i = 0
        while i < len(tokens):
            previous = parts[-1].strip() if parts else ""
            skip = self._filler_at(words, i, previous)
            if skip:
                if parts and not tokens[i + skip - 1].whitespace_:
                    parts[-1] = parts[-1].rstrip()
                i += skip
                continue
            word = self._words.get(words[i]) or self._correct(words[i])
            parts.append(word + tokens[i].whitespace_)
            i += 1
        result = "".join(parts).strip()
        for phrase in self._closing:
            bare = result.rstrip(" .!?")
            if bare == phrase or bare.endswith(" " + phrase):
                result = bare[: len(bare) - len(phrase)].strip()
        return result


@lru_cache(maxsize=1)
def pipeline() -> Language:
    """The project's spaCy pipeline (``build/spacy/en_dry_needling``), loaded once per process."""
    import spacy

    return spacy.load(SPACY_PIPELINE_DIR)


class Screen:
    """The whole screen: a spaCy pipeline and the rule files in ``rules_dir``."""

    def __init__(self, nlp: Language, rules_dir: Path = RULES_DIR) -> None:
        self.nlp = nlp
        self.rules_dir = Path(rules_dir)
        #: The semantic red-flag detector, once :meth:`attach_encoder` gave it an encoder.
        self.semantic: Optional[SemanticDetector] = None
        lemmas = self._lemma_table(nlp)
        config = yaml.safe_load((rules_dir / NORMALISE_FILE).read_text(encoding="utf-8")) or {}
        self.normalise = Normaliser(config, nlp, lemmas)
        self.findings = FindingMatcher(load_patterns(rules_dir / FINDINGS_FILE), nlp.vocab)
        self.context = ConText(load_rules(rules_dir / CONTEXT_FILE), nlp.vocab)
        self.table: DecisionTable = load_table(rules_dir / TABLE_FILE)
        self.catalogue: Catalogue = catalogue_in(rules_dir)
        self.languages: LanguageNet = LanguageNet(self.rules_dir / LANGUAGES_FOLDER)
        self._sentencizer = Sentencizer()

    @staticmethod
    def _lemma_table(nlp: Language) -> Table:
        if "lemmatizer" in nlp.pipe_names:
            lookups = nlp.get_pipe("lemmatizer").lookups
            if lookups.has_table("lemma_lookup"):
                return lookups.get_table("lemma_lookup")
        return Lookups().add_table("lemma_lookup")

    def parse(self, text: str) -> Doc:
        """The normalised message, parsed, with sentence boundaries."""
        doc = self.nlp(self.normalise(text))
        if not doc.has_annotation("SENT_START"):
            # The project's pipeline has no parser; ConText scopes end at sentence boundaries.
            self._sentencizer(doc)
        return doc

    def attach_encoder(self, encode: Encoder) -> None:
        """Turn on the semantic red-flag detector with a sentence encoder (the NLU pipeline's)."""
        config = SemanticConfig.load(self.rules_dir / SEMANTIC_FILE)
        self.semantic = SemanticDetector(self.catalogue, config, encode)

    def prime(self, texts: Sequence[str]) -> None:
        """Encode the clauses of many messages in batches before screening them (evaluation
        runs: one batch call instead of one per message); nothing without the semantic detector."""
        if self.semantic is not None:
            self.semantic.prime([self.parse(text) for text in texts])

    def _read(self, text: str) -> tuple[str, Optional[Doc], list[Finding]]:
        """The message's language and, for English, its parse and listed findings.

        Short or mixed messages in another language look English to the identifier ("me
        ahogo", "seit dem dry needling habe ich Atemnot"): a second look
        (:func:`~bot.core.safety.languages.identify_for_safety`) is taken where the English screen
        finds no health term, or where another language leads, so an English "is incontinence
        a side effect?" stays English.
        """
        language = identify(text)
        if language != "en":
            return language, None, []
        doc = self.parse(text)
        found = self.findings.find(doc)
        english_terms = any(f.label in HEALTH_LABELS and f.label != "BODY_REGION" for f in found)
        leading = leading_language(text) if english_terms else "en"
        if not english_terms or leading != "en":
            language = identify_for_safety(text, self.languages)
        if language == "en" and leading != "en":
            # Another language leads and its catalogue reads the terms only as a question or a
            # negation ("¿hay riesgo de sepsis?"): that reading, not the English one. (A report
            # it reads counts only through the second look's own confidence, above.)
            local = self.languages.findings(text, leading)
            if local and not any(f.is_report for f in local):
                language = leading
        return language, doc, found

    def language(self, text: str) -> str:
        """The language the screen reads ``text`` in (``"en"``, or a code of another language)."""
        return self._read(text)[0]

    def __call__(self, text: str, embedding: Optional[np.ndarray] = None) -> Verdict:
        """Screen one patient message (``embedding``: its sentence embedding, if already computed)."""
        language, doc, found = self._read(text)
        if language != "en":
            return self._other_language(text, language)
        # 1. Findings: the listed wordings, then red flags found by meaning in the clauses
        # that hold no listed red flag.
        if self.semantic is not None:
            found = sorted(found + self._semantic_findings(doc, found, embedding), key=lambda f: (f.start, f.end))
        # 2. Context.
        modifiers = self.context.apply(doc, found, blocking=HEALTH_LABELS)
        for finding in found:
            if finding.clause:
                self._drop_inability(doc, finding)
        # 3. Verdict: links to a treatment first. A signal they give (TREATED) holds from the
        # sentence of the link to the end of the message: what a patient tells after saying
        # a treatment happened relates to it, what they said before it need not
        # ("I'm drained after my shift. Bit sore after yesterday's needling").
        signals: dict[str, int] = {}
        # Message-wide signals of the table's ``signals`` section ("I'm on warfarin") hold
        # from the start of the message.
        for finding in found:
            for name in self.table.signals_of(finding.label, finding.category, finding.categories):
                signals[name] = 0
        evidence: dict[int, Evidence] = {}
        ordered = sorted(range(len(found)), key=lambda i: found[i].label != "TREATMENT_LINK")
        for index in ordered:
            finding = found[index]
            sentence = doc[finding.start].sent.start
            contexts = finding.categories | {name for name, start in signals.items() if start <= sentence}
            row = self.table.decide(finding.label, finding.category, contexts)
            if row is not None and row.signal:
                signals[row.signal] = min(sentence, signals.get(row.signal, sentence))
            evidence[index] = Evidence(
                label=finding.label,
                category=finding.category,
                text=finding.text,
                contexts=sorted(contexts),
                rule=row.id if row else None,
                outcome=row.outcome if row else None,
                gives_reason=bool(row and row.reason),
                detector=finding.detector,
            )
        items = [evidence[i] for i in range(len(found))]
        reason = self.table.most_serious(e.outcome for e in items if e.gives_reason)
        deciding = next((e for e in items if e.gives_reason and e.outcome == reason), None)
        categories = {m.category for m in modifiers}
        signals = set(signals)
        if categories & QUESTION_CATEGORIES or any(t.text == "?" for t in doc):
            signals.add("QUESTION")
        if any(f.label == "TREATMENT_MENTION" for f in found):
            signals.add("TREATMENT_MENTIONED")
        third_party = "OTHER_PERSON" in categories
        verdict = Verdict(
            reason=reason,
            priority=self.table.priority.get(reason) if reason else None,
            evidence=[e for e in items if e.label not in {"TREATMENT_MENTION"}],
            personal=third_party or "SELF" in categories,
            third_party=third_party,
            signals=sorted(signals),
            rationale=self._rationale(deciding),
        )
        return describe(verdict, reason, self.catalogue)

    def _semantic_findings(self, doc: Doc, found: list[Finding], embedding: Optional[np.ndarray]) -> list[Finding]:
        """A finding per clause the semantic detector reads as a red flag, spanning the clause:
        ConText's triggers inside it ("I'm not ...") and around it ("what if ...", "... is
        that normal?") reach it as they reach a listed wording."""
        # Clauses with a listed health word are the lexical detector's: a condition ("I faint
        # at the sight of needles") or an after-effect is not to be read again as a red flag.
        lexical = [(f.start, f.end) for f in found if f.label in SEMANTIC_LEAVES]
        return [
            Finding(label="RED_FLAG", start=p.span.start, end=p.span.end, category=p.concept,
                    text=p.span.text, detector="semantic", clause=True)
            for p in self.semantic.propose(doc, skip=lexical, whole=embedding)
        ]

    def _other_language(self, text: str, language: str) -> Verdict:
        """A message in another language: the red flags of that language's catalogue
        (:mod:`bot.core.safety.languages`, which judges negation and questions itself), each an
        emergency when reported; otherwise no reason (the assistant says, in that language,
        that it answers in English, with the clinic's and the emergency number)."""
        reports = [f for f in self.languages.findings(text, language) if f.is_report]
        if not reports:
            return Verdict(language=language)
        evidence = [
            Evidence(label="RED_FLAG", category=self.catalogue.classes[f.red_flag_class].concepts[0].id, text=f.text,
                     contexts=["OTHER_PERSON"] if f.third_party else [], rule=LANGUAGE_RULE, outcome="emergency",
                     gives_reason=True, detector=f"language:{language}")
            for f in reports
        ]
        third_party = any(f.third_party for f in reports)
        verdict = Verdict(reason="emergency", priority=self.table.priority.get("emergency"), evidence=evidence,
                          personal=True, third_party=third_party, rationale=LANGUAGE_RATIONALE, language=language)
        return describe(verdict, "emergency", self.catalogue)

    def _drop_inability(self, doc: Doc, finding: Finding) -> None:
        """Inside a clause read by meaning, a negated modal ("can't breathe", "won't empty") is
        the symptom itself, not a ruling-out: that negation does not apply to it."""
        words = self.semantic.config.inability_words
        finding.modifiers = [
            m for m in finding.modifiers
            if not (m.category == "NEGATED" and finding.start <= m.start < finding.end
                    and m.start > 0 and doc[m.start].lower_ in {"n't", "nt", "not"} and doc[m.start - 1].lower_ in words)
        ]

    def _rationale(self, evidence: Optional[Evidence]) -> Optional[str]:
        if evidence is None:
            return None
        return next((row.rationale for row in self.table.rows if row.id == evidence.rule), None)


_lock = threading.Lock()
_screen: Optional[Screen] = None


def default_screen() -> Screen:
    """The screen on the project's pipeline and ``RULES_DIR`` (built once per process)."""
    global _screen
    with _lock:
        if _screen is None:
            _screen = Screen(pipeline())
        return _screen


def screen_text(text: str, embedding: Optional[np.ndarray] = None) -> Verdict:
    """Screen one patient message: the project's spaCy pipeline and the safety rules, no Rasa model
    (and the semantic detector, once an encoder was attached to :func:`default_screen`)."""
    return default_screen()(text, embedding)


def message_language(text: str) -> str:
    """The language the screen reads a message in (the channels' guard answers other
    languages in their own language)."""
    return default_screen().language(text)


def table() -> DecisionTable:
    """The decision table in force (severity order, priorities, staff intents)."""
    return default_table()
