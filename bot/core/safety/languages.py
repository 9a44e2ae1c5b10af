"""The safety net for messages that are not in English.

The assistant answers in English only, and the safety screen reads English. A patient who
writes "nie mogę oddychać" or "ik heb pijn op de borst" must still hear, in their own
language, to call 999 now. Two parts, both ground floor (standard library, yaml and the
language-ID library only):

* :func:`identify` names the language of a message with lingua (``lingua-language-detector``),
  restricted to the languages UK patients most often write in. It answers ``"en"`` for
  English *and* whenever it cannot tell: short messages ("ok", "thx", "yes pls"), names,
  numbers, emoji and text-speak go to the English assistant as before. Lingua was chosen by
  measurement over py3langid (``tests/safety/test_languages.py`` prints the figures).
* :class:`LanguageNet` reads one catalogue per language (``data/safety/languages/<code>.yml``,
  written to be read by a clinician who speaks it): red-flag terms per class, matched on
  folded text (lower case, no diacritics: "oddychac" is "oddychać"), with negation cues in a
  short window before a term, hypothetical or risk-question cues in the same clause, and
  "someone else" cues; and the replies in that language (``emergency``,
  ``emergency_third_party``, ``other_language``). ``en.yml`` holds the English fallback for
  every other language. When a cue is unclear the finding stays a report: this is a net.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional

import yaml

logger = logging.getLogger(__name__)

LANGUAGES_DIR = Path(__file__).resolve().parents[3] / "data" / "safety" / "languages"
#: The red-flag classes (the English catalogue uses the same ids).
RED_FLAG_CLASSES = (
    "breathing", "anaphylaxis", "stroke", "chest_pain", "collapse", "bleeding", "sepsis", "infection",
    "nerve_injury", "cauda_equina", "headache", "vision", "retained_needle",
)
REPLY_KEYS = ("emergency", "emergency_third_party", "other_language")

#: Languages :func:`identify` chooses among. The Latin-script ones are those UK clinics meet
#: most; their models take about 250 MB once loaded (:func:`warm_up`). Other scripts have one
#: language each, which lingua names from the script alone with no model: Urdu comes out as
#: "ar", Ukrainian as "ru", both answered by the English fallback. A catalogue in a language
#: that shares its script needs that language added here (about 50 MB a script).
LATIN_CANDIDATES = ("en", "nl", "fr", "de", "pl", "es", "it", "pt", "ro")
OTHER_SCRIPT_CANDIDATES = ("ar", "ru", "zh", "ja", "ko", "el", "he", "hi", "bn", "pa", "gu", "ta", "th")
#: Fewer Latin words than this and the message is left to the English assistant ("ok", "duele mucho").
MIN_WORDS = 3
#: Not English when lingua gives another language at least this confidence ...
SURE = 0.8
#: ... or, in a message of :data:`LONG_WORDS` words or more, English at most 1 - this (close
#: languages share the rest: "es" 0.5, "pt" 0.3).
NOT_ENGLISH = 0.9
LONG_WORDS = 6
#: :func:`identify_for_safety` looks for red flags in every language lingua gives this much.
PLAUSIBLE = 0.2

WORD = re.compile(r"[^\W\d_]+")
NOT_TEXT = re.compile(r"\S+@\S+|https?://\S+|www\.\S+")


def _is_latin(ch: str) -> bool:
    return "LATIN" in unicodedata.name(ch, "")


@lru_cache(maxsize=1)
def _detector():  # -> lingua.LanguageDetector (imported lazily: nothing loads at import time)
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    codes = LATIN_CANDIDATES + OTHER_SCRIPT_CANDIDATES
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in codes]
    return LanguageDetectorBuilder.from_languages(*languages).build()


def warm_up() -> None:
    """Load the Latin-script language models now, not on a patient's first message (about 250 MB)."""
    identify("dit is een bericht, c'est un message, to jest wiadomość, esto es un mensaje, das ist eine Nachricht")


def _confidences(text: str) -> list[tuple[str, float]]:
    """Lingua's confidence in each candidate language, highest first."""
    values = _detector().compute_language_confidence_values(text)
    return [(v.language.iso_code_639_1.name.lower(), v.value) for v in values]


def identify(text: str) -> str:
    """The ISO 639-1 code of the message's language; ``"en"`` for English or when it cannot be told."""
    text = NOT_TEXT.sub(" ", text or "")
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    if sum(_is_latin(ch) for ch in letters) / len(letters) < 0.5:
        language = _detector().detect_language_of(text)
        return language.iso_code_639_1.name.lower() if language is not None else "en"
    words = WORD.findall(text)
    if len(words) < MIN_WORDS or all(w.istitle() for w in words):  # short, or only names
        return "en"
    values = _confidences(text)
    code, top = values[0]
    english = dict(values).get("en", 0.0)
    if code != "en" and (top >= SURE or (len(words) >= LONG_WORDS and 1.0 - english >= NOT_ENGLISH)):
        return code
    return "en"


def leading_language(text: str) -> str:
    """Lingua's most likely language of the text, however unsure (``"en"`` without letters)."""
    text = NOT_TEXT.sub(" ", text or "")
    if not any(ch.isalpha() for ch in text):
        return "en"
    values = _confidences(text)
    return values[0][0] if values else "en"


def identify_for_safety(text: str, net: "LanguageNet") -> str:
    """:func:`identify`, with a second look for a red flag when it answers English.

    A short or unclear message ("nie moge oddychac", "me ahogo") is English to
    :func:`identify`; if lingua finds one of the net's languages plausible
    (:data:`PLAUSIBLE`) and that language's catalogue finds a report in it, the message is
    in that language. On the project's English messages this second look never fires
    (``tests/safety/test_languages.py``).
    """
    code = identify(text)
    if code != "en" or not any(ch.isalpha() for ch in text or ""):
        return code
    for candidate, value in _confidences(NOT_TEXT.sub(" ", text)):
        if value >= PLAUSIBLE and net.supported(candidate) and any(f.is_report for f in net.findings(text, candidate)):
            return candidate
    return "en"


# --- normalisation -------------------------------------------------------------------

_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "æ": "ae", "œ": "oe", "ß": "ss", "ı": "i"})
#: A clause break (, : brackets) and a sentence end (. ! ? ;): no term or negation reaches
#: across either; a hypothetical cue ("what if") reaches to the end of its sentence.
BOUNDARY = "|"
SENTENCE_END = "||"
_SENTENCE_CHARS = re.compile(r"[.!?¿¡;\n]+")
_CLAUSE_CHARS = re.compile(r"[:,()\[\]]+")
_OTHER = re.compile(r"[^\w|]+")


def fold(text: str) -> str:
    """Lower case, diacritics removed ("Oddychać" -> "oddychac", "Straße" -> "strasse")."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(ch for ch in text if not unicodedata.combining(ch)).translate(_FOLD)


def tokens(text: str) -> list[str]:
    """Folded words with :data:`BOUNDARY` and :data:`SENTENCE_END` marks; apostrophes split ("n'arrive")."""
    text = _SENTENCE_CHARS.sub(f" {SENTENCE_END} ", fold(text).replace("|", " "))
    text = _CLAUSE_CHARS.sub(f" {BOUNDARY} ", text)
    return [t for t in _OTHER.sub(" ", text.replace("_", " ")).split()]


# --- the catalogue -------------------------------------------------------------------


class CatalogueError(ValueError):
    """A language file is malformed."""


@dataclass(frozen=True)
class LocalFinding:
    """A red-flag term found in a non-English message."""

    red_flag_class: str
    text: str
    negated: bool = False
    question: bool = False
    third_party: bool = False

    @property
    def is_report(self) -> bool:
        """Neither negated nor asked about as a risk: the patient says it is happening."""
        return not (self.negated or self.question)


Pattern = tuple[str, ...]
#: In a phrase, ``...`` stands for up to :data:`GAP` words of the same clause ("naald ... afgebroken").
GAP_TOKEN = "..."
GAP = 4


def _pattern(phrase: str, commas: bool = False) -> Pattern:
    """A phrase as folded tokens; a token ending in ``*`` matches any word it begins, ``...`` up to four words.

    Only a cue may hold a comma (``commas``: "was ist, wenn"); a term never spans a clause.
    """
    parts: list[str] = []
    for word in str(phrase).split():
        if word == GAP_TOKEN:
            parts.append(GAP_TOKEN)
            continue
        star = word.endswith("*")
        parts.extend(tokens(word.rstrip("*")))
        if star and parts:
            parts[-1] += "*"
    marks = {SENTENCE_END} if commas else {BOUNDARY, SENTENCE_END}
    if not parts or marks & set(parts) or GAP_TOKEN in (parts[0], parts[-1]):
        raise CatalogueError(f"not a phrase: {phrase!r}")
    return tuple(parts)


def _word_matches(p: str, w: str) -> bool:
    if p == BOUNDARY:
        return w == BOUNDARY
    return w not in (BOUNDARY, SENTENCE_END) and (w.startswith(p[:-1]) if p.endswith("*") else p == w)


def _match(pattern: Pattern, words: list[str], i: int, unskippable: frozenset = frozenset()) -> int:
    """Where ``pattern`` ends if it matches ``words`` from ``i`` (the shortest match), else -1.

    A gap never skips a boundary or a word of ``unskippable`` (negation words: "zie ... wazig"
    must not swallow the "niet" of "ik zie niet wazig").
    """
    if not pattern:
        return i
    if pattern[0] == GAP_TOKEN:
        for skip in range(GAP + 1):
            skipped = words[i:i + skip]
            if i + skip > len(words) or {BOUNDARY, SENTENCE_END, *unskippable}.intersection(skipped):
                break
            end = _match(pattern[1:], words, i + skip, unskippable)
            if end >= 0:
                return end
        return -1
    if i < len(words) and _word_matches(pattern[0], words[i]):
        return _match(pattern[1:], words, i + 1, unskippable)
    return -1


class Phrases:
    """Patterns indexed by their first word (or its beginning, for ``word*``), matched in one pass."""

    def __init__(self, patterns: Iterable[tuple[Pattern, str]], unskippable: frozenset = frozenset()) -> None:
        self._exact: dict[str, list[tuple[Pattern, str]]] = {}
        self._prefix: dict[str, list[tuple[Pattern, str]]] = {}
        self._unskippable = unskippable
        for pattern, label in patterns:
            first = pattern[0]
            index = self._prefix if first.endswith("*") else self._exact
            index.setdefault(first.rstrip("*"), []).append((pattern, label))

    def find(self, words: list[str]) -> list[tuple[int, int, Pattern, str]]:
        """Every match: start, end, the pattern and its label."""
        found = []
        for i, word in enumerate(words):
            candidates = list(self._exact.get(word, ()))
            for k in range(1, len(word) + 1):
                candidates.extend(self._prefix.get(word[:k], ()))
            for pattern, label in candidates:
                end = _match(pattern, words, i, self._unskippable)
                if end >= 0:
                    found.append((i, end, pattern, label))
        return found

    def spans(self, words: list[str]) -> list[tuple[int, int]]:
        """Where the patterns occur."""
        return [(start, end) for start, end, _, _ in self.find(words)]


def _phrases(items: Iterable[str], commas: bool = False) -> Phrases:
    return Phrases((_pattern(item, commas), "") for item in items or ())


class Catalogue:
    """One language's terms, cues and replies (``data/safety/languages/<code>.yml``)."""

    def __init__(self, code: str, data: dict) -> None:
        self.code = code
        self.name = str(data.get("name", code))
        self.replies = {str(k): str(v) for k, v in (data.get("replies") or {}).items()}
        missing = [k for k in REPLY_KEYS if k not in self.replies]
        if missing:
            raise CatalogueError(f"{code}.yml: replies missing {missing}")
        cues = data.get("cues") or {}
        self.window = int(data.get("negation_window", 4))
        negation = [_pattern(p) for p in cues.get("negation") or ()]
        self.negation = Phrases((p, "") for p in negation)
        self.pseudo_negation = _phrases(cues.get("pseudo_negation"))
        self.hypothetical = _phrases(cues.get("hypothetical"), commas=True)
        self.risk = _phrases(cues.get("risk"))
        self.report = _phrases(cues.get("report"))
        self.third_party = _phrases(cues.get("third_party"))
        self.terminators = _phrases(cues.get("terminators"))
        self.classes = data.get("classes") or {}
        unknown = set(self.classes) - set(RED_FLAG_CLASSES)
        if unknown:
            raise CatalogueError(f"{code}.yml: unknown red-flag classes {sorted(unknown)}")
        terms = [(term, name) for name, entry in self.classes.items() for term in (entry or {}).get("terms") or ()]
        self.terms = Phrases(
            ((_pattern(term), name) for term, name in terms),
            # A gap never skips a negation word: "zie ... wazig" is not "ik zie niet wazig".
            unskippable=frozenset(p[0] for p in negation if len(p) == 1),
        )
        self.templates = data.get("templates") or {}

    def _clauses(self, words: list[str]) -> list[tuple[int, int]]:
        """Spans of ``words`` between boundaries and terminators ("maar", "but")."""
        breaks = {i for i, w in enumerate(words) if w in (BOUNDARY, SENTENCE_END)}
        for start, end in self.terminators.spans(words):
            breaks.update(range(start, end))
        return self._spans(words, breaks)

    @staticmethod
    def _sentences(words: list[str]) -> list[tuple[int, int]]:
        return Catalogue._spans(words, {i for i, w in enumerate(words) if w == SENTENCE_END})

    @staticmethod
    def _spans(words: list[str], breaks: set[int]) -> list[tuple[int, int]]:
        spans, start = [], 0
        for i in sorted(breaks) + [len(words)]:
            if i > start:
                spans.append((start, i))
            start = i + 1
        return spans

    def findings(self, text: str) -> list[LocalFinding]:
        """Red-flag terms in ``text`` with their negation, question and someone-else flags."""
        words = tokens(text)
        matched: list[tuple[int, int, str]] = []
        taken = [False] * len(words)
        # Longest pattern first: "kan niet ademen" wins over "ademen", and its "niet" is no negation.
        for start, end, _, name in sorted(self.terms.find(words), key=lambda m: (-len(m[2]), m[0])):
            if not any(taken[start:end]):
                matched.append((start, end, name))
                taken[start:end] = [True] * (end - start)
        if not matched:
            return []
        third_party = bool(self.third_party.spans(words))
        pseudo = self.pseudo_negation.spans(words)
        negations = [
            (s, e) for s, e in self.negation.spans(words)
            if not any(taken[s:e]) and not any(ps <= s and e <= pe for ps, pe in pseudo)
        ]
        hypotheticals = self.hypothetical.spans(words)
        risks = self.risk.spans(words)
        reports = self.report.spans(words)
        clauses, sentences = self._clauses(words), self._sentences(words)
        found = []
        for start, end, name in sorted(matched):
            c_start, c_end = next(((s, e) for s, e in clauses if s <= start < e), (start, end))
            s_start = next((s for s, e in sentences if s <= start < e), start)
            negated = any(c_start <= s and e <= start and start - e <= self.window for s, e in negations)
            supposed = any(s_start <= s and e <= start for s, e in hypotheticals)
            asked = any(c_start <= s and e <= c_end for s, e in risks)
            told = any(c_start <= s and e <= c_end and not (s < end and start < e) for s, e in reports)
            found.append(LocalFinding(
                red_flag_class=name,
                text=" ".join(words[start:end]),
                negated=negated,
                question=supposed or (asked and not told),
                third_party=third_party,
            ))
        return found


class LanguageNet:
    """Every language catalogue in a folder, loaded once."""

    def __init__(self, folder: Path = LANGUAGES_DIR) -> None:
        self.catalogues: dict[str, Catalogue] = {}
        for path in sorted(Path(folder).glob("*.yml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            self.catalogues[path.stem] = Catalogue(path.stem, data)
        if "en" not in self.catalogues:
            raise CatalogueError(f"{folder}: no en.yml (the fallback for other languages)")

    def supported(self, code: str) -> bool:
        """Whether there is a red-flag catalogue in language ``code`` (English is the screen's)."""
        return code != "en" and code in self.catalogues

    def findings(self, text: str, code: str) -> list[LocalFinding]:
        """The red-flag terms of language ``code`` in ``text`` (none for an unsupported language)."""
        return self.catalogues[code].findings(text) if self.supported(code) else []

    def reply(self, code: str, key: str, values: dict) -> Optional[str]:
        """Reply ``key`` in language ``code`` with ``{placeholders}`` filled; ``None`` if there is none."""
        catalogue = self.catalogues.get(code)
        text = catalogue.replies.get(key) if catalogue else None
        if text is None:
            return None
        try:
            return text.format(**values)
        except (KeyError, IndexError) as exc:
            logger.error("reply %s/%s needs a value that was not given: %s", code, key, exc)
            return None


_lock = threading.Lock()
_net: Optional[LanguageNet] = None


def default_net() -> LanguageNet:
    """The net on ``data/safety/languages/`` (read once per process)."""
    global _net
    with _lock:
        if _net is None:
            _net = LanguageNet()
        return _net
