"""Deterministic variants of patient messages for the safety screen's metamorphic tests.

A metamorphic test needs no label for the variant: it checks a relation between the
screen's answer to a seed message and its answer to a transformed copy. The seeds are the
safety suites' cases and the FAQ questions of the evaluation sets (read, never edited); the
templates of invariants (c) and (d) take their terms from the curated vocabularies in
``data/patterns/*.jsonl``, so a new red flag or condition is covered without a new test.

Everything here is pure and seeded (:data:`SEED`): the same files give the same variants on
every machine, so a failure in CI can be reproduced by its text. No screen is called here
(see :mod:`evaluation.metamorphic`).

The four families (issue 14, item 4):

* ``neutral``: neutral context (greetings, "quick question:", times, occupations, unrelated
  past-tense activities, adverbs such as "immediately", "improved", tired/drained/crowded
  phrasing) around an ordinary question.
* ``noise``: casing, apostrophes, punctuation, filler and typos on a staff-bound message.
  Typo policy (the edits a spelling-tolerant matcher should handle): one edit (two
  neighbouring letters swapped, a letter dropped or doubled) in one word of five or more
  letters, at or after its third letter, giving a non-word (never "needled" -> "needed"),
  and never inside a curated term of the vocabulary or a finding the screen based its
  verdict on: the finding stays as written, so its recognition is the vocabulary's job,
  not this test's.
  Context words ("since", "session", "needling") may get typos: a human reads "sicne my
  sesion" without trouble, so a screen that decides on them should too.
* ``risk`` / ``report``: a red-flag term asked as a general question about risk, and the
  same term reported as happening after a treatment.
* ``negation``: a condition, medicine or device ruled out, followed by an ordinary question.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Optional

from bot.assistant.nlp.pipeline import load_patterns
from bot.core.settings import REPO_ROOT
from evaluation.nlu import read_dir, read_safety_suite

SEED = 14
SUITES = (REPO_ROOT / "tests" / "safety" / "suite.yml", REPO_ROOT / "tests" / "safety" / "blind_suite.yml")
PATTERN_DIR = REPO_ROOT / "data" / "patterns"


def eval_set_dirs() -> list[Path]:
    """The evaluation sets (``evaluation/sets/nlu_holdout*``), in a fixed order."""
    return sorted(p for p in (REPO_ROOT / "evaluation" / "sets").glob("nlu_holdout*") if p.is_dir())


@dataclass(frozen=True)
class Seed:
    """A message the variants start from."""

    text: str
    #: Where it comes from: ``suite.yml``, ``blind_suite.yml`` or ``<eval set>``.
    source: str
    #: The label: ``staff`` or ``ordinary``.
    expect: str
    #: The expected reason of a staff-bound suite case.
    reason: Optional[str] = None
    #: A general question (suite tag ``general`` or ``personal: false``).
    general: bool = False


@dataclass(frozen=True)
class Variant:
    """A transformed message and how it was made."""

    family: str
    seed: Seed
    text: str
    #: The transformation (e.g. ``occupation``, ``typo``, ``risk:np``, ``negation:condition``).
    transform: str
    #: The curated term the template used (families ``risk``, ``report``, ``negation``).
    term: Optional[str] = None
    category: Optional[str] = None


def _rng(key: str) -> random.Random:
    """A generator seeded by :data:`SEED` and ``key``: a seed's variants do not change when
    other seeds are added or removed (string seeds are hashed with SHA-512, not ``hash()``)."""
    return random.Random(f"{SEED}|{key}")


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def suite_seeds() -> list[Seed]:
    """Every case of both safety suites."""
    seeds = []
    for path in SUITES:
        for case in read_safety_suite(path):
            seeds.append(
                Seed(
                    text=case.text, source=path.name, expect=case.expect, reason=case.reason,
                    general=("general" in case.tags) or case.personal is False,
                )
            )
    return seeds


def faq_seeds() -> list[Seed]:
    """The FAQ questions of every evaluation set, each text once (first set wins)."""
    seen: set[str] = set()
    seeds = []
    for folder in eval_set_dirs():
        for example in read_dir(folder):
            if example.intent.startswith("faq/") and _key(example.text) not in seen:
                seen.add(_key(example.text))
                seeds.append(Seed(text=example.text, source=folder.name, expect="ordinary"))
    return seeds


# ---------------------------------------------------------------- vocabularies


@lru_cache(maxsize=None)
def vocabulary(label: str, pattern_dir: Path = PATTERN_DIR) -> dict[str, tuple[str, ...]]:
    """The curated phrase patterns of one entity label (the red-flag catalogue's included), by
    category (token patterns skipped)."""
    terms: dict[str, list[str]] = {}
    for item in load_patterns(pattern_dir):
        if item.get("label") == label and isinstance(item.get("pattern"), str):
            terms.setdefault(item.get("id") or label.lower(), []).append(item["pattern"])
    return {category: tuple(dict.fromkeys(values)) for category, values in terms.items()}


HEALTH_LABELS = ("CONDITION", "MEDICATION", "DEVICE", "SYMPTOM", "RED_FLAG")


@lru_cache(maxsize=1)
def _term_pattern() -> re.Pattern:
    terms = {t for label in HEALTH_LABELS for values in vocabulary(label).values() for t in values}
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True) if len(t) > 2)
    return re.compile(rf"(?<![\w'’])(?:{alternatives})(?![\w'’])", re.IGNORECASE)


def protected_spans(text: str, extra: Iterable[str] = ()) -> list[tuple[int, int]]:
    """Character spans of curated health terms in ``text`` (plus ``extra`` texts, e.g. the
    screen's own evidence), which the noise transforms must leave intact."""
    spans = [m.span() for m in _term_pattern().finditer(text)]
    lowered = text.lower()
    for piece in extra:
        piece = piece.lower().strip()
        start = lowered.find(piece) if piece else -1
        while start >= 0:
            spans.append((start, start + len(piece)))
            start = lowered.find(piece, start + 1)
    return sorted(spans)


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < s_end and s_start < end for s_start, s_end in spans)


# ---------------------------------------------------------------- (a) neutral context

#: (kind, template). ``{q}`` is the ordinary question, unchanged.
NEUTRAL_CONTEXT: tuple[tuple[str, str], ...] = (
    ("greeting", "Hi, {q}"),
    ("greeting", "Hello there! {q}"),
    ("greeting", "Good morning. {q}"),
    ("greeting", "{q} Thanks in advance!"),
    ("quick_question", "Quick question: {q}"),
    ("quick_question", "Sorry to bother you, quick question - {q}"),
    ("time", "I was reading your website this morning. {q}"),
    ("time", "{q} Asking on my lunch break today."),
    ("time", "Been meaning to ask since last week: {q}"),
    ("occupation", "I'm a nurse. {q}"),
    ("occupation", "I'm a nurse on a busy ward, {q}"),
    ("occupation", "I work as a hairdresser and I'm on my feet all day. {q}"),
    ("occupation", "I'm a chef. {q}"),
    ("occupation", "As a retired builder, {q}"),
    ("past_activity", "I walked the dog yesterday. {q}"),
    ("past_activity", "I cycled to work this morning. {q}"),
    ("past_activity", "We painted the kitchen last weekend and it got me thinking. {q}"),
    ("past_activity", "{q} I played five-a-side last night, if that matters."),
    ("past_activity", "I finished a 10k run on Sunday. {q}"),
    ("adverb", "Honestly, {q}"),
    ("adverb", "Immediately after reading about it I wanted to ask: {q}"),
    ("adverb", "{q} I'd like to book immediately if so."),
    ("adverb", "Out of interest, {q}"),
    ("improved", "My posture has improved a lot this year. {q}"),
    ("improved", "Things have improved at work lately. {q}"),
    ("tired_crowded", "The ward was crowded today and I'm drained after my shift. {q}"),
    ("tired_crowded", "I'm tired of searching online for this. {q}"),
    ("tired_crowded", "Long day at work, feeling a bit drained. Anyway, {q}"),
    ("tired_crowded", "The bus was crowded this morning. {q}"),
    # Added after the rebuilt screen passed every template above: fresh wording, so that a
    # screen fitted to the first set shows it here.
    ("greeting", "Morning! {q}"),
    ("quick_question", "Random question but {q}"),
    ("occupation", "I'm a plumber. {q}"),
    ("occupation", "I work night shifts at a warehouse, {q}"),
    ("past_activity", "We had a barbecue on Saturday. {q}"),
    ("past_activity", "I jogged round the park yesterday. {q}"),
    ("time", "Just got back from holiday last week. {q}"),
    ("adverb", "Truthfully, {q}"),
    ("improved", "My sleep has got much better lately. {q}"),
    ("tired_crowded", "The car park was packed earlier. {q}"),
    ("tired_crowded", "I'm exhausted from moving house, {q}"),
)
#: Templates per FAQ seed (the suites' ordinary cases get every template).
FAQ_TEMPLATES_PER_SEED = 1


def neutral_variants(suite_ordinary: Iterable[Seed], faq: Iterable[Seed]) -> list[Variant]:
    """Each suite case with every template; each FAQ question with a few drawn at random."""
    variants = [
        Variant("neutral", seed, template.format(q=seed.text), kind)
        for seed in suite_ordinary
        for kind, template in NEUTRAL_CONTEXT
    ]
    for seed in faq:
        for kind, template in _rng(seed.text).sample(NEUTRAL_CONTEXT, FAQ_TEMPLATES_PER_SEED):
            variants.append(Variant("neutral", seed, template.format(q=seed.text), kind))
    return variants


# ---------------------------------------------------------------- (b) noise

#: Fillers inserted between words ("so yeah" only closes a message, see :func:`noise_variants`).
FILLERS = ("um", "uh", "like", "erm", "basically", "you know")
WORD = re.compile(r"[A-Za-z]+")


#: A word at least this probable (log) in spaCy's English lexeme table is a real word.
REAL_WORD_LOGPROB = -15.0


@lru_cache(maxsize=1)
def _english() -> dict[str, float]:
    """spaCy's English word probabilities (``spacy-lookups-data``, installed for the lemmatizer)."""
    import gzip
    from importlib import resources

    with resources.files("spacy_lookups_data").joinpath("data/en_lexeme_prob.json.gz").open("rb") as raw:
        return json.loads(gzip.decompress(raw.read()))


def is_real_word(word: str) -> bool:
    """Whether ``word`` is a reasonably common English word (a typo into one is not a typo)."""
    return _english().get(word.lower(), -99.0) >= REAL_WORD_LOGPROB


def typo(text: str, rng: random.Random, spans: list[tuple[int, int]]) -> Optional[str]:
    """One non-word edit in one word of five or more letters outside ``spans``.

    The edit (neighbours swapped, a letter dropped or doubled) is at or after the word's
    third letter, and its result is not an English word ("needled" -> "needed" changes the
    meaning; no spelling-tolerant matcher can undo it). ``None`` when no word qualifies.
    """
    words = [m for m in WORD.finditer(text) if len(m.group()) >= 5 and not _overlaps(*m.span(), spans)]
    for _ in range(10):
        if not words:
            return None
        match = rng.choice(words)
        word = match.group()
        i = rng.randrange(2, len(word) - 1)
        operation = rng.choice(("swap", "drop", "double"))
        if operation == "swap" and word[i] != word[i + 1]:
            edited = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif operation == "drop":
            edited = word[:i] + word[i + 1:]
        else:
            edited = word[: i + 1] + word[i] + word[i + 1:]
        if not is_real_word(edited):
            return text[: match.start()] + edited + text[match.end():]
    return None


def insert_filler(text: str, rng: random.Random, spans: list[tuple[int, int]], count: int) -> str:
    """Insert ``count`` fillers at word boundaries that are not inside a curated term."""
    gaps = [m.start() for m in re.finditer(r"(?<=\S) (?=\S)", text) if not _inside(m.start(), spans)]
    chosen = sorted(rng.sample(gaps, min(count, len(gaps))), reverse=True)
    for gap in chosen:
        text = f"{text[:gap]} {rng.choice(FILLERS)}{text[gap:]}"
    return text


def noise_variants(staff: Iterable[Seed], evidence: Optional[dict[str, list[str]]] = None) -> list[Variant]:
    """Casing, apostrophe, punctuation, filler and typo variants of staff-bound messages.

    Args:
        staff: the seeds.
        evidence: per seed text, the finding texts the screen reported (kept intact too).
    """
    variants: list[Variant] = []
    for seed in staff:
        text = seed.text
        rng = _rng(text)
        spans = protected_spans(text, (evidence or {}).get(text, ()))
        candidates = [
            ("upper", text.upper()),
            ("lower", text.lower()),
            ("sentence_case", text[:1].upper() + text[1:].lower()),
            ("no_apostrophes", re.sub(r"['’]", "", text)),
            ("curly_apostrophes", text.replace("'", "’")),
            ("no_punctuation", " ".join(re.sub(r"[.,;:!?]", " ", text).split())),
            ("filler", f"um {text[:1].lower()}{text[1:]} so yeah"),
            ("filler", insert_filler(text, rng, spans, 1)),
            ("filler", insert_filler(text, rng, spans, 2)),
        ]
        for _ in range(3):
            edited = typo(text, rng, spans)
            if edited:
                candidates.append(("typo", edited))
        seen = {text}
        for transform, variant in candidates:
            if variant not in seen:
                seen.add(variant)
                variants.append(Variant("noise", seed, variant, transform))
    return variants


# ---------------------------------------------------------------- term shapes

#: Words that make a curated phrase a clause or a fragment, not a noun phrase or a state
#: ("still bleeding", "pain in my chest", "can't breathe"): such terms are used by the
#: suites, not by the templates, which need a phrase that fits "can dry needling cause __?".
CLAUSE_WORDS = frozenset(
    "i i'm im i’m my me it it's its it’s is are was were be been has have had having will won't wont "
    "won’t can can't cant can’t cannot could couldn't couldnt not no does doesn't do don't keep keeps "
    "kept went gone got going think feel feels felt feeling still since ever all when where from to "
    "in on at with up out down under over off after before like just recently about almost nearly "
    "gonna might may your his her their our we you a an this that these those for what how "
    "hasnt isnt didnt dont doesnt wasnt arent havent aint".split()
)
NOUN_HEADS = frozenset(
    "pain pains ache fever fevers lung lungs breath blood chills sweats shivers pressure discomfort "
    "temperature streak streaks pus discharge speech puncture collapse spell episode symptoms cough "
    "phlegm spit sputum mucus rigors rigours bleeding breathing tingling thorax paralysis syncope "
    "fragment headache incontinence control".split()
)
NOUN_SUFFIXES = ("ness", "ion", "sis", "ity", "thorax", "ysis", "emia", "aemia", "ema", "oma", "itis", "ia", "ism")
#: Heads that take "a" ("a collapsed lung", "a fainting spell").
COUNTABLE = frozenset("lung puncture streak spell episode cough collapse fragment".split())
#: A first word that makes a phrase a verb phrase, and participles that are adjectives.
VERB_STARTS = frozenset("lose lost cough spit spat hit drop keep stop".split())
PARTICIPLE_ADJECTIVES = frozenset("collapsed punctured deflated pierced slurred laboured labored".split())
STATE_WORDS = frozenset("numb breathless breathles wheezy shivery feverish fevery paralysed paralyzed winded".split())


def _clause_word(word: str) -> bool:
    return word in CLAUSE_WORDS or "n't" in word or "n’t" in word or "'" in word or "’" in word


def shape(term: str) -> Optional[str]:
    """``noun``, ``state`` (an adjective: "numb", "short of breath") or ``None`` (a clause).

    Only for the templates of the red-flag family; a clause-shaped term ("still bleeding",
    "lips went blue") is left to the suites' hand-written cases.
    """
    if re.fullmatch(r"(short|out) of breath", term):
        return "state"
    words = term.split()
    if not words or any(_clause_word(w) for w in words[1:]) or _clause_word(words[0]) and words[0] not in {"a", "an"}:
        return None
    if any(not re.fullmatch(r"[a-z][a-z-]*", w) for w in words):
        return None
    if len(words) > 1 and (words[0] in VERB_STARTS or words[0].endswith("ed") and words[0] not in PARTICIPLE_ADJECTIVES):
        return None  # "lose consciousness", "coughed blood", "lost sensation"
    last = words[-1]
    if len(words) == 1 and (last in STATE_WORDS or last.endswith(("less", "ish"))):
        return "state"
    if last in NOUN_HEADS or last.endswith(NOUN_SUFFIXES) or (len(words) == 1 and last.endswith("ing")):
        return "noun"
    return None


def _with_article(term: str) -> str:
    if term.split()[-1] in COUNTABLE and term.split()[0] not in {"a", "an", "the"}:
        return ("an " if term[0] in "aeiou" else "a ") + term
    return term


def _pick(terms: Iterable[str], rng: random.Random, count: int) -> list[str]:
    """The category's first usable term (its canonical spelling) and ``count - 1`` others."""
    usable = list(terms)
    if len(usable) <= count:
        return usable
    return [usable[0]] + rng.sample(usable[1:], count - 1)


# ---------------------------------------------------------------- (c) risk question vs report

RISK_TEMPLATES = {
    "noun": (
        "can dry needling cause {x}?",
        "is {x} a risk with dry needling?",
        "how common is {x} after dry needling?",
        "could I get {x} from dry needling?",
        "what are the chances of {x} after a needling session?",
        "is {x} a possible side effect of needling?",
        "can {x} happen immediately after dry needling?",
        "I'm a bit nervous, has anyone ever had {x} from dry needling?",
        "my friend had needling last week and asked me: does it ever cause {x}?",
        "what's the risk of {x} with needling?",
        "does needling ever lead to {x}?",
        "worried about {x} - how often does that happen with needling?",
        "is there any chance of {x} after a session?",
        "my sister says needling gave her friend {x}, is that common?",
    ),
    "state": (
        "can dry needling leave you {x}?",
        "is it possible to feel {x} after dry needling?",
        "how likely is it to be {x} after a needling session?",
        "could I end up {x} from dry needling?",
        "I'm a bit nervous, do people ever feel {x} immediately after needling?",
        "worried about feeling {x} after needling, how often does that happen?",
        "is there any chance I'd be {x} after a session?",
    ),
}
REPORT_TEMPLATES = {
    "noun": (
        "since my needling this morning I've had {x}",
        "I've had {x} since my dry needling session yesterday",
        "after my treatment today I've got {x}, what do I do?",
        "a few hours after the needling I started getting {x}",
        "help, {x} since my dry needling appointment this afternoon",
        "my husband has had {x} since his dry needling this morning",
        "woke up with {x} the morning after my needling",
        "{x} started about an hour after my session today",
        "got {x} since the physio needled my back this morning",
        "having {x} after being needled yesterday, what should I do",
    ),
    "state": (
        "since my needling this morning I've been {x}",
        "I've felt {x} ever since my dry needling session yesterday",
        "after my treatment today I feel {x}, what do I do?",
        "a few hours after the needling I became {x}",
        "my daughter has been {x} since her needling session yesterday",
        "woke up {x} the morning after my needling",
        "been {x} since the physio needled my back this morning",
    ),
}
TERMS_PER_CATEGORY = 5


def red_flag_terms(pattern_dir: Path = PATTERN_DIR) -> dict[str, list[tuple[str, str]]]:
    """Per red-flag category, the (term, shape) pairs the templates use."""
    chosen = {}
    for category, terms in sorted(vocabulary("RED_FLAG", pattern_dir).items()):
        usable = [(t, shape(t)) for t in terms]
        chosen[category] = _pick([(t, s) for t, s in usable if s], _rng(category), TERMS_PER_CATEGORY)
    return chosen


def red_flag_variants(pattern_dir: Path = PATTERN_DIR) -> tuple[list[Variant], list[Variant]]:
    """(risk questions, reports after a treatment), each red-flag term in every template of its shape."""
    risk, report = [], []
    for category, pairs in red_flag_terms(pattern_dir).items():
        for term, kind in pairs:
            x = _with_article(term) if kind == "noun" else term
            seed = Seed(text=term, source="data/patterns", expect="ordinary")
            for template in RISK_TEMPLATES[kind]:
                risk.append(Variant("risk", seed, template.format(x=x), f"risk:{kind}", term, category))
            seed = Seed(text=term, source="data/patterns", expect="staff", reason="emergency")
            for template in REPORT_TEMPLATES[kind]:
                report.append(Variant("report", seed, template.format(x=x), f"report:{kind}", term, category))
    return risk, report


# ---------------------------------------------------------------- (d) negation

NEGATION_TEMPLATES = {
    ("CONDITION", "noun"): ("I don't have {x}, {q}", "I've never had {x}. {q}", "no {x} here, {q}"),
    ("CONDITION", "state"): ("I'm not {x}, {q}", "I am not {x}. {q}", "definitely not {x}, {q}"),
    ("MEDICATION", "noun"): ("I'm not on {x}, {q}", "I don't take {x}. {q}", "never taken {x}, {q}"),
    ("DEVICE", "noun"): ("I don't have {a}{x}, {q}", "no {x} or anything like that. {q}", "I've never had {a}{x} fitted. {q}"),
}
#: Categories that are not the patient's own health (a child is who would be treated).
NEGATION_SKIP = {"child"}


#: Condition words that are adjectives without an adjective's suffix.
CONDITION_STATES = frozenset("frail elderly positive preggers bedbound housebound".split())


def _negation_shape(label: str, term: str) -> Optional[str]:
    """``state`` ("I'm not pregnant"), ``noun`` ("I don't have epilepsy") or ``None`` (a clause)."""
    words = term.split()
    if any(_clause_word(w) for w in words) or any(not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", w) for w in words):
        return None
    last = words[-1]
    if label == "CONDITION" and (
        last in CONDITION_STATES
        or last.endswith(("ant", "ic", "ish", "less", "ous"))
        or last.endswith("ed") and (len(words) == 1 or words[0] in {"immune", "immuno"})
        or last.endswith("ing") and (len(words) == 1 or "feed" in term)
    ):
        return "state"
    return "noun"


def negation_variants(questions: list[Seed], pattern_dir: Path = PATTERN_DIR) -> list[Variant]:
    """Each sampled condition, medicine and device term, ruled out, then an ordinary question.

    The question is drawn from ``questions`` (the FAQ seeds) by the term and template alone;
    the caller drops variants whose question the screen does not find ordinary by itself.
    """
    variants = []
    for label in ("CONDITION", "MEDICATION", "DEVICE"):
        for category, terms in sorted(vocabulary(label, pattern_dir).items()):
            if category in NEGATION_SKIP:
                continue
            usable = [(t, _negation_shape(label, t)) for t in terms]
            usable = [(t, s) for t, s in usable if s and (label, s) in NEGATION_TEMPLATES]
            for term, kind in _pick(usable, _rng(category), 4):
                article = "" if term.endswith("s") and not term.endswith("ss") else ("an " if term[0] in "aeiou" else "a ")
                for template in NEGATION_TEMPLATES[(label, kind)]:
                    question = _rng(term + template).choice(questions)
                    text = template.format(x=term, a=article, q=question.text)
                    variants.append(Variant("negation", question, text, f"negation:{label.lower()}", term, category))
    return variants


def iter_texts(variants: Iterable[Variant]) -> Iterator[str]:
    """The variants' texts (for batching through the screen)."""
    return (v.text for v in variants)


# ---------------------------------------------------------------- (e) catalogue reports

#: Text-speak a patient in a hurry types (the screen's normaliser spells some of it out).
SHORTHAND = (
    (r"\bi am\b", "im"), (r"\bi'm\b", "im"), (r"\bi've\b", "ive"), (r"\bcan't\b", "cant"), (r"\bcan not\b", "cant"),
    (r"\bwon't\b", "wont"), (r"\bdon't\b", "dont"), (r"\bdoesn't\b", "doesnt"), (r"\bit's\b", "its"),
    (r"\bhe's\b", "hes"), (r"\bshe's\b", "shes"), (r"\byou\b", "u"), (r"\byour\b", "ur"), (r"\bare\b", "r"),
    (r"\bsession\b", "sesh"), (r"\bdry needling\b", "dn"), (r"\byesterday\b", "yday"), (r"\bplease\b", "pls"),
    (r"\bbecause\b", "cos"), (r"\bbefore\b", "b4"), (r"\btomorrow\b", "tmrw"), (r"\bappointment\b", "appt"),
)
#: Someone else, as the writer names them: (who, subject pronoun, object pronoun, possessive).
OTHER_PEOPLE = (
    ("my husband", "he", "him", "his"),
    ("my wife", "she", "her", "her"),
    ("my partner", "they", "them", "their"),
    ("my son", "he", "him", "his"),
    ("my daughter", "she", "her", "her"),
    ("my mum", "she", "her", "her"),
    ("my dad", "he", "him", "his"),
)
#: First words of a report with its subject left out ("lost control of my bowels").
_SUBJECTLESS_STARTS = frozenset(
    "lost can't cant can not gasping coughing spurting getting running seeing covered suddenly sudden".split()
)
_FIRST_PERSON_SUBJECT = re.compile(r"\b(i'm|im|i am|i've|ive|i have|i)\b")
_THIRD = {"i'm": "{who} is", "im": "{who} is", "i am": "{who} is", "i've": "{who} has", "ive": "{who} has",
          "i have": "{who} has", "i": "{who}"}
_LATER = {"i'm": "{s} is", "im": "{s} is", "i am": "{s} is", "i've": "{s} has", "ive": "{s} has", "i have": "{s} has", "i": "{s}"}


def shorthand(text: str) -> str:
    """The message as text-speak: lower case, no apostrophes, common abbreviations."""
    out = text.lower().replace("\u2019", "'")
    for pattern, replacement in SHORTHAND:
        out = re.sub(pattern, replacement, out)
    return out.rstrip(".")


def third_person(text: str, who: str, subject: str, obj: str, possessive: str) -> Optional[str]:
    """The first-person report told by someone else ("I can't breathe" -> "my husband can't
    breathe"); ``None`` when the message has no first person to change."""
    lower = text.lower().replace("\u2019", "'")
    if not re.search(r"\b(i|i'm|im|i've|ive|my|me|myself)\b", lower):
        return None
    placeholder = "\x00"  # stands for ``who`` until the remaining "my" are changed
    first = _FIRST_PERSON_SUBJECT.search(lower)
    if first is not None:
        lower = lower[:first.start()] + _THIRD[first.group(1)].format(who=placeholder) + lower[first.end():]
        lower = _FIRST_PERSON_SUBJECT.sub(lambda m: _LATER[m.group(1)].format(s=subject), lower)
    elif lower.split(" ", 1)[0] in _SUBJECTLESS_STARTS:
        # "lost control of my bowels" -> "my daughter lost control of her bowels"
        lower = placeholder + " " + lower
    else:
        # "my lips are swelling" -> "my husband's lips are swelling"
        lower = re.sub(r"\bmy\b", placeholder + "'s", lower, count=1)
    lower = re.sub(r"\bmyself\b", {"he": "himself", "she": "herself"}.get(subject, "themselves"), lower)
    lower = re.sub(r"\bmy\b", possessive, lower)
    return re.sub(r"\bme\b", obj, lower).replace(placeholder, who)


def catalogue_variants(catalogue) -> list[Variant]:
    """Every report example of the red-flag catalogue as written, in shorthand, and told by
    someone else (one person per example, chosen by the example), in shorthand too."""
    variants = []
    for cls in catalogue.classes.values():
        for example in cls.examples:
            seed = Seed(text=example, source=f"red_flags/{cls.id}.yml", expect="staff", reason="emergency")
            variants.append(Variant("catalogue", seed, example, "example", None, cls.id))
            variants.append(Variant("catalogue", seed, shorthand(example), "shorthand", None, cls.id))
            person = _rng(example).choice(OTHER_PEOPLE)
            told = third_person(example, *person)
            if told is not None:
                variants.append(Variant("catalogue", seed, told, "third_person", None, cls.id))
                variants.append(Variant("catalogue", seed, shorthand(told), "third_person+shorthand", None, cls.id))
    return variants


# ---------------------------------------------------------------- (f) other languages

LANGUAGES_DIR = REPO_ROOT / "data" / "safety" / "languages"


def language_variants(folder: Path = LANGUAGES_DIR) -> tuple[list[Variant], list[Variant]]:
    """(reports, not-emergencies) of each language catalogue: every class's report example in
    every report template of its language, the someone-else examples, and the not-emergency
    and ordinary examples, each tagged with its language and class."""
    import yaml

    reports, ordinary = [], []
    for path in sorted(folder.glob("*.yml")):
        if path.stem == "en":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        templates = (data.get("templates") or {}).get("report") or ["{report}"]
        for cls, spec in (data.get("classes") or {}).items():
            for example in spec.get("examples") or ():
                seed = Seed(text=example, source=path.name, expect="staff", reason="emergency")
                reports += [Variant("language", seed, t.format(report=example), f"language:{path.stem}", None, cls)
                            for t in templates]
            for text in spec.get("not_emergency") or ():
                ordinary.append(Variant("language", Seed(text, path.name, "ordinary"), text, f"language:{path.stem}", None, cls))
        for example in data.get("third_party_examples") or ():
            seed = Seed(text=example, source=path.name, expect="staff", reason="emergency")
            reports.append(Variant("language", seed, example, f"language:{path.stem}:third_person", None, None))
        for text in data.get("ordinary") or ():
            ordinary.append(Variant("language", Seed(text, path.name, "ordinary"), text, f"language:{path.stem}", None, None))
    return reports, ordinary
