"""A second, independent red-flag detector: meaning, not words (issue: red flags in any wording).

The lexical findings (:mod:`bot.core.safety.findings`) only know the wordings the catalogue lists.
This detector compares each clause of a message with the catalogue's everyday ``phrasings``
of every red-flag class, as sentence embeddings (all-MiniLM-L6-v2, the encoder the NLU
pipeline already runs), and proposes a ``RED_FLAG`` finding for the nearest class when the
similarity reaches the threshold in ``data/safety/semantic.yml``. It never decides anything
itself: ConText gives the proposed finding its context (negated, a question, history,
someone else) and the decision table decides, exactly as for a lexical finding. It reads
only the clauses in which the lexical detector found no health word at all, where a listed
wording cannot speak; there a proposal only adds a finding, so the safer route wins.

The encoder is passed in (``encode(texts) -> unit vectors``), so this module stays on the
safety package's ground floor; :mod:`bot.assistant.nlp.safety_component` hands it the pipeline's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import yaml
from spacy.tokens import Doc, Span

from bot.core.safety.catalogue import Catalogue

SEMANTIC_FILE = "semantic.yml"
#: ``encode(texts)``: one L2-normalised vector per text.
Encoder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class SemanticConfig:
    """Thresholds and clause splitting (``data/safety/semantic.yml``)."""

    threshold: float
    min_words: int
    split_words: frozenset
    class_thresholds: dict
    #: Verbs whose negation inside a clause is the symptom ("can't", "won't"), not a ruling-out.
    inability_words: frozenset = frozenset()

    @classmethod
    def load(cls, path: Path) -> "SemanticConfig":
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        threshold = float(data["threshold"])
        if not 0 < threshold < 1:
            raise ValueError(f"{path}: threshold must be between 0 and 1")
        return cls(
            threshold=threshold,
            min_words=int(data.get("min_words", 2)),
            split_words=frozenset(str(w).lower() for w in data.get("split_words") or ()),
            class_thresholds={str(k): float(v) for k, v in (data.get("class_thresholds") or {}).items()},
            inability_words=frozenset(str(w).lower() for w in data.get("inability_words") or ()),
        )


@dataclass(frozen=True)
class Proposal:
    """A clause the detector reads as a red flag: the clause, the class, its first concept, the score."""

    span: Span
    red_flag_class: str
    concept: str
    score: float
    anchor: str


def _words(span: Span) -> int:
    return sum(1 for t in span if t.is_alpha)


def clauses(doc: Doc, split_words: frozenset, min_words: int) -> list[Span]:
    """The message's clauses: its sentences, cut before commas, semicolons and joining words
    ("and", "but", "so" ...); a piece of fewer than ``min_words`` words joins its neighbour."""
    result: list[Span] = []
    for sent in doc.sents:
        cuts = [t.i for t in sent if t.i > sent.start and (t.text in {",", ";", ":"} or t.lower_ in split_words)]
        bounds = [sent.start] + cuts + [sent.end]
        merged: list[Span] = []
        for a, b in zip(bounds, bounds[1:]):
            if merged and (_words(doc[a:b]) < min_words or _words(merged[-1]) < min_words):
                merged[-1] = doc[merged[-1].start:b]
            else:
                merged.append(doc[a:b])
        result += [m for m in merged if _words(m) >= min_words]
    return result


class SemanticDetector:
    """Nearest catalogue phrasing per clause, above a threshold."""

    def __init__(self, catalogue: Catalogue, config: SemanticConfig, encode: Encoder) -> None:
        self.config = config
        self._encode = encode
        anchors = [(cls.id, cls.concepts[0].id, text) for cls in catalogue.classes.values() for text in cls.phrasings]
        self._anchors = anchors
        self._matrix = np.asarray(encode([text.lower() for _, _, text in anchors]), dtype=np.float32)
        #: Clause vectors computed ahead in batches (:meth:`prime`, for evaluation runs only: the
        #: assistant never primes, so no patient text is kept).
        self._primed: dict[str, np.ndarray] = {}

    def prime(self, docs: Sequence[Doc], batch_size: int = 256) -> None:
        """Encode the clauses of many messages in large batches ahead of screening them."""
        texts = sorted({c.text for doc in docs for c in clauses(doc, self.config.split_words, self.config.min_words)}
                       - set(self._primed))
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            for text, vector in zip(chunk, np.asarray(self._encode(chunk), dtype=np.float32)):
                self._primed[text] = vector

    def anchor(self, index: int) -> tuple[str, str, str]:
        """The ``(class, concept, phrasing)`` of anchor ``index``."""
        return self._anchors[index]

    def threshold_for(self, red_flag_class: str) -> float:
        return self.config.class_thresholds.get(red_flag_class, self.config.threshold)

    def scores(self, texts: Sequence[str], vectors: Optional[np.ndarray] = None) -> list[tuple[int, float]]:
        """For each text, the index of its nearest anchor and the cosine similarity."""
        if not texts:
            return []
        if vectors is None and self._primed and all(t in self._primed for t in texts):
            vectors = np.stack([self._primed[t] for t in texts])
        vectors = np.asarray(self._encode(list(texts)) if vectors is None else vectors, dtype=np.float32)
        similarity = vectors @ self._matrix.T
        best = similarity.argmax(axis=1)
        return [(int(i), float(similarity[row, i])) for row, i in enumerate(best)]

    def propose(self, doc: Doc, skip: Sequence[tuple[int, int]] = (), whole: Optional[np.ndarray] = None) -> list[Proposal]:
        """Red-flag proposals for the clauses of ``doc`` that hold none of the ``skip`` spans
        (the lexical red flags). ``whole``: the message's own embedding, reused when the
        message is one clause."""
        pieces = [c for c in clauses(doc, self.config.split_words, self.config.min_words)
                  if not any(s < c.end and c.start < e for s, e in skip)]
        if not pieces:
            return []
        vectors = whole.reshape(1, -1) if whole is not None and len(pieces) == 1 and self._is_whole(doc, pieces[0]) else None
        proposals = []
        for piece, (index, score) in zip(pieces, self.scores([p.text for p in pieces], vectors)):
            cls_id, concept, anchor = self._anchors[index]
            if score >= self.threshold_for(cls_id):
                proposals.append(Proposal(span=piece, red_flag_class=cls_id, concept=concept, score=score, anchor=anchor))
        return proposals

    @staticmethod
    def _is_whole(doc: Doc, piece: Span) -> bool:
        words = [t.i for t in doc if not (t.is_punct or t.is_space)]
        return bool(words) and piece.start <= words[0] and piece.end > words[-1]
