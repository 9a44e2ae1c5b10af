"""Term lists of ``data/safety/subject_terms.yml``, matched on a spaCy document's tokens.

A list holds words (matched on the lower-cased token), ``prefix*`` entries and phrases of
several words (split by the pipeline's tokenizer, then matched token by token), plus spaCy
token patterns where a list is not enough (``empty_it``). Used by the checks that keep FAQ
answers on dry needling (:mod:`bot.assistant.nlp.other_subject`, :mod:`bot.assistant.nlp.unfamiliar_subject`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

import yaml
from spacy.lang.en import English
from spacy.matcher import Matcher
from spacy.tokens import Doc

from bot.core.safety.decision import RULES_DIR

TERMS_FILE = "subject_terms.yml"


@lru_cache(maxsize=1)
def _tokenizer():
    return English().tokenizer


@dataclass(frozen=True)
class TermList:
    """Words, prefixes and phrases; :meth:`spans` finds them in a document."""

    words: frozenset
    prefixes: tuple
    phrases: tuple

    @classmethod
    def parse(cls, entries: Iterable[str]) -> "TermList":
        words, prefixes, phrases = set(), [], []
        for entry in entries:
            entry = str(entry).lower()
            tokens = [t.text for t in _tokenizer()(entry.rstrip("*"))]
            if entry.endswith("*") and len(tokens) == 1:
                prefixes.append(tokens[0])
            elif len(tokens) == 1:
                words.add(tokens[0])
            else:
                phrases.append((tuple(tokens), entry.endswith("*")))
        return cls(frozenset(words), tuple(prefixes), tuple(phrases))

    def _token(self, word: str) -> bool:
        return word in self.words or word.startswith(self.prefixes)

    def spans(self, doc: Doc) -> list[tuple[int, int]]:
        """Token ranges of every term in ``doc``."""
        lower = [t.lower_ for t in doc]
        found = [(i, i + 1) for i, word in enumerate(lower) if self._token(word)]
        for phrase, open_end in self.phrases:
            n = len(phrase)
            for i in range(len(lower) - n + 1):
                head, last = lower[i:i + n - 1], lower[i + n - 1]
                if list(phrase[:-1]) == head and (last.startswith(phrase[-1]) if open_end else last == phrase[-1]):
                    found.append((i, i + n))
        return sorted(found)

    def any(self, doc: Doc) -> bool:
        """Whether ``doc`` holds any term."""
        return bool(self.spans(doc))


class Lexicon:
    """The term lists and token patterns of ``subject_terms.yml``."""

    def __init__(self, data: dict) -> None:
        self._lists = {name: TermList.parse(v) for name, v in data.items() if isinstance(v, list) and all(isinstance(x, str) for x in v)}
        self._patterns = {name: v for name, v in data.items() if isinstance(v, list) and v and all(isinstance(x, list) for x in v)}
        self._matchers: dict[int, tuple[object, dict[str, Matcher]]] = {}

    def __getitem__(self, name: str) -> TermList:
        return self._lists[name]

    def words(self, name: str) -> frozenset:
        """The single words of a list (for lists used as plain word sets)."""
        return self._lists[name].words

    def pattern_spans(self, name: str, doc: Doc) -> list[tuple[int, int]]:
        """Token ranges matched by the token patterns ``name`` (e.g. ``empty_it``)."""
        entry = self._matchers.get(id(doc.vocab))
        if entry is None or entry[0] is not doc.vocab:
            entry = (doc.vocab, {})
            self._matchers[id(doc.vocab)] = entry
        matchers = entry[1]
        if name not in matchers:
            matcher = Matcher(doc.vocab)
            matcher.add(name, self._patterns[name])
            matchers[name] = matcher
        return sorted((s, e) for _, s, e in matchers[name](doc))


@lru_cache(maxsize=1)
def lexicon(path: Optional[Path] = None) -> Lexicon:
    """The lexicon of ``RULES_DIR`` (read once per process)."""
    data = yaml.safe_load(Path(path or RULES_DIR / TERMS_FILE).read_text(encoding="utf-8"))
    return Lexicon(data)


def outside(spans: Sequence[tuple[int, int]], holes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans that do not overlap any of ``holes``."""
    return [(s, e) for s, e in spans if not any(hs < e and s < he for hs, he in holes)]
