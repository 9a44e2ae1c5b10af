"""Step 1 of the screen: the findings in a message.

Two sources, both curated data:

* the entity ruler of the project's spaCy pipeline (``data/patterns/*.jsonl``, built into
  ``build/spacy``): conditions, medicines, devices, body regions, symptoms, red flags;
* ``data/safety/findings.jsonl``, spaCy token patterns matched at run time (usually on
  ``LEMMA``, so "needles", "needled" and "needling" need one pattern), for what is
  not a single health term: a request for a person, a general question about who may not
  have the treatment, a link to a treatment already given ("since my session"), bleeding
  that will not stop, the age of a child, a question whether to seek emergency care.

Each finding has a ``label`` (its kind: ``RED_FLAG``, ``TREATMENT_LINK`` ...) and a
``category`` (what it is: ``fainting``, ``since_treatment`` ...). Whether it is negated, a
question or a report is the next step's business (:mod:`bot.core.safety.context`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.vocab import Vocab

from bot.core.safety.context import Target

#: Entity-ruler labels the screen reads (OTHER_TREATMENT only keeps FAQ answers on topic).
ENTITY_LABELS = frozenset({"CONDITION", "MEDICATION", "DEVICE", "BODY_REGION", "SYMPTOM", "RED_FLAG"})
#: Labels a pattern in ``findings.jsonl`` may use.
PATTERN_LABELS = ENTITY_LABELS | {"HUMAN_REQUEST", "GENERAL_CONTRAINDICATION", "TREATMENT_LINK", "TREATMENT_MENTION", "CARE_SEEKING"}


class FindingError(ValueError):
    """A finding pattern is malformed."""


@dataclass
class Finding(Target):
    """A curated term found in the message (a ConText target)."""

    category: str = ""
    text: str = ""
    #: Which detector proposed it: ``lexical`` (a listed wording) or ``semantic`` (:mod:`bot.core.safety.semantic`).
    detector: str = "lexical"


def load_patterns(path: Path) -> list[dict]:
    """Read ``findings.jsonl``: one ``{"label", "id", "pattern"}`` object a line (``#`` lines are comments)."""
    patterns = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{Path(path).name}:{lineno}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FindingError(f"{where}: not JSON ({exc.msg})") from exc
        if {"label", "id", "pattern"} - item.keys():
            raise FindingError(f"{where}: needs label, id and pattern")
        if item["label"] not in PATTERN_LABELS:
            raise FindingError(f"{where}: unknown label {item['label']!r}")
        if isinstance(item["pattern"], str):
            item["pattern"] = [{"LOWER": word} for word in item["pattern"].lower().split()]
        patterns.append(item)
    return patterns


class FindingMatcher:
    """Finds the entity ruler's health terms and the screen's own patterns in a document."""

    def __init__(self, patterns: Iterable[dict], vocab: Vocab) -> None:
        self._matcher = Matcher(vocab)
        self._keys: dict[int, tuple[str, str, bool, bool]] = {}
        for index, item in enumerate(patterns):
            name = f"{item['label']}|{item['id']}|{index}"
            try:
                self._matcher.add(name, [item["pattern"]])
            except Exception as exc:
                raise FindingError(f"pattern {index} ({item['id']}): {exc}") from exc
            self._keys[vocab.strings[name]] = (
                item["label"], item["id"], bool(item.get("whole_message")), bool(item.get("exclude"))
            )

    def find(self, doc: Doc) -> list[Finding]:
        """All findings in ``doc`` (a normalised message), in text order."""
        findings = [
            Finding(label=ent.label_, start=ent.start, end=ent.end, category=ent.ent_id_ or ent.label_.lower(), text=ent.text)
            for ent in doc.ents
            if ent.label_ in ENTITY_LABELS
        ]
        matches = [(self._keys[key], start, end) for key, start, end in self._matcher(doc)]
        excluded = [(label, start, end) for (label, _, _, exclude), start, end in matches if exclude]
        words = [t.i for t in doc if not (t.is_punct or t.is_space)]
        whole = (words[0], words[-1] + 1) if words else (0, 0)
        # The longest match per label wins where one label's patterns overlap.
        matches.sort(key=lambda m: (-(m[2] - m[1]), m[1]))
        taken: dict[str, list[tuple[int, int]]] = {}
        for (label, category, whole_message, exclude), start, end in matches:
            if exclude or (whole_message and (start, end) != whole):
                continue
            if any(x == label and s < end and start < e for x, s, e in excluded):
                continue
            spans = taken.setdefault(label, [(f.start, f.end) for f in findings if f.label == label])
            if any(s < end and start < e for s, e in spans):
                continue
            spans.append((start, end))
            findings.append(Finding(label=label, start=start, end=end, category=category, text=doc[start:end].text))
        findings.sort(key=lambda f: (f.start, f.end))
        return findings
