"""The red-flag catalogue (``data/safety/red_flags/*.yml``): what counts as an emergency.

One file per class (breathing, anaphylaxis, stroke, ...), written for a clinician to read:

* ``emergency``: ``always`` (an emergency whenever it is reported as happening now, with or
  without a treatment named: stroke signs, anaphylaxis) or ``after_treatment`` (only when the
  message ties it to a treatment: a fever, new numbness). A concept may override its class.
* ``care``: ``"999"`` (call 999 or go to A&E) or ``"111"`` (urgent: NHS 111), the reply's
  first line; ``reply``: the reply class.
* ``concepts``: the symptom concepts, each with its lay words, shorthand and misspellings
  (``phrases`` on lemmas, ``exact`` as written with a why, spaCy token ``patterns``). They
  become the entity ruler's ``RED_FLAG`` patterns (:func:`ruler_patterns`, used by
  :mod:`bot.assistant.nlp.pipeline`), the concept being the finding's category.
* ``examples`` (reports that must take the emergency path), ``phrasings`` (everyday wordings
  for the semantic detector, :mod:`bot.core.safety.semantic`) and ``not_emergency`` (questions,
  negations, history that must not): tests and the detector's anchors.
* ``sources``: NHS, NICE CKS and the dry-needling adverse-event literature.

The decision table (:mod:`bot.core.safety.decision`) reads the catalogue's emergency groups, so the
severity of each class is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional

import yaml

CATALOGUE_DIR = "red_flags"
EMERGENCY_LEVELS = ("always", "after_treatment")
CARE_LEVELS = ("999", "111")
#: Decision-table groups the catalogue defines: ``@red_flag_always``, ``@red_flag_after_treatment``.
GROUP_PREFIX = "red_flag_"
_CLASS_KEYS = {"id", "name", "emergency", "care", "reply", "why", "sources", "concepts", "symptoms", "examples", "phrasings", "not_emergency"}
_CONCEPT_KEYS = {"emergency", "phrases", "exact", "patterns"}


class CatalogueError(ValueError):
    """A catalogue file is malformed."""


@dataclass(frozen=True)
class Concept:
    """One symptom concept (the finding's category) and how it is worded."""

    id: str
    emergency: str
    phrases: tuple[str, ...] = ()
    #: ``(phrase, why)``: matched only as written.
    exact: tuple[tuple[str, str], ...] = ()
    patterns: tuple[tuple, ...] = ()


@dataclass(frozen=True)
class RedFlagClass:
    """One red-flag class of the catalogue."""

    id: str
    name: str
    emergency: str
    care: str
    reply: str
    why: str
    sources: tuple[dict, ...]
    concepts: tuple[Concept, ...]
    #: After-effects (``SYMPTOM`` categories) that belong to this class when a table row makes
    #: them an emergency (bleeding that will not stop is ``minor_bleeding`` made ``bleeding``).
    symptoms: tuple[str, ...]
    examples: tuple[str, ...]
    phrasings: tuple[str, ...]
    not_emergency: tuple[str, ...]


@dataclass
class Catalogue:
    """Every class, and each concept's class."""

    classes: dict[str, RedFlagClass]
    concept_class: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for cls in self.classes.values():
            for concept in cls.concepts:
                if concept.id in self.concept_class:
                    raise CatalogueError(f"concept {concept.id!r} is in two classes")
                self.concept_class[concept.id] = cls.id

    def class_of(self, concept: str, label: str = "RED_FLAG") -> Optional[RedFlagClass]:
        """The class a finding belongs to: a ``RED_FLAG`` concept, or a ``SYMPTOM`` a class lists."""
        if label == "SYMPTOM":
            return next((c for c in self.classes.values() if concept in c.symptoms), None)
        name = self.concept_class.get(concept)
        return self.classes.get(name) if name else None

    def concepts(self) -> Iterable[Concept]:
        for cls in self.classes.values():
            yield from cls.concepts

    def groups(self) -> dict[str, list[str]]:
        """Decision-table groups: ``red_flag_always`` and ``red_flag_after_treatment``, as ``RED_FLAG:concept``."""
        groups: dict[str, list[str]] = {GROUP_PREFIX + level: [] for level in EMERGENCY_LEVELS}
        for concept in self.concepts():
            groups[GROUP_PREFIX + concept.emergency].append(f"RED_FLAG:{concept.id}")
        return groups

    def ruler_patterns(self) -> list[dict]:
        """The concepts' wordings as entity-ruler pattern items (label ``RED_FLAG``, id = concept),
        in the shape of ``data/patterns/*.jsonl`` lines. A phrase is written in the first person
        ("numb between my legs"); it also matches told of someone else ("... his legs")."""
        items: list[dict] = []
        for concept in self.concepts():
            items += [{"label": "RED_FLAG", "pattern": p, "id": concept.id} for p in _told_of_anyone(concept.phrases)]
            items += [
                {"label": "RED_FLAG", "pattern": p, "id": concept.id, "exact": True, "why": why}
                for phrase, why in concept.exact for p in _told_of_anyone([phrase])
            ]
            items += [{"label": "RED_FLAG", "pattern": list(p), "id": concept.id} for p in concept.patterns]
        return items


#: Possessives a first-person phrase is also matched with.
OTHER_POSSESSIVES = ("his", "her", "their", "your")


def _told_of_anyone(phrases: Iterable[str]) -> list[str]:
    """Each phrase, and each phrase with "my" replaced by another person's possessive."""
    out: list[str] = []
    for phrase in phrases:
        out.append(phrase)
        words = phrase.split(" ")
        if "my" in words:
            out += [" ".join(w if w != "my" else other for w in words) for other in OTHER_POSSESSIVES]
    return list(dict.fromkeys(out))


def _strings(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CatalogueError(f"{where}: needs a list of texts")
    return tuple(value)


def _concept(name: str, data: dict, default_level: str, where: str) -> Concept:
    if not isinstance(data, dict) or set(data) - _CONCEPT_KEYS:
        raise CatalogueError(f"{where}: concept {name!r} has unknown keys")
    level = data.get("emergency", default_level)
    if level not in EMERGENCY_LEVELS:
        raise CatalogueError(f"{where}: concept {name!r}: emergency must be one of {EMERGENCY_LEVELS}")
    exact = []
    for item in data.get("exact") or []:
        if not isinstance(item, dict) or not str(item.get("phrase", "")).strip() or not str(item.get("why", "")).strip():
            raise CatalogueError(f"{where}: concept {name!r}: an exact phrase needs a phrase and a why")
        exact.append((str(item["phrase"]).lower(), str(item["why"])))
    patterns = data.get("patterns") or []
    if not all(isinstance(p, list) and p and all(isinstance(t, dict) for t in p) for p in patterns):
        raise CatalogueError(f"{where}: concept {name!r}: a pattern is a list of token objects")
    phrases = tuple(p.lower() for p in _strings(data.get("phrases"), f"{where}: {name}"))
    if not (phrases or exact or patterns):
        raise CatalogueError(f"{where}: concept {name!r} has no wording")
    return Concept(id=name, emergency=level, phrases=phrases, exact=tuple(exact), patterns=tuple(tuple(p) for p in patterns))


def parse_class(data: dict, where: str) -> RedFlagClass:
    """One class from its YAML form, checked."""
    if not isinstance(data, dict):
        raise CatalogueError(f"{where}: not a mapping")
    unknown = set(data) - _CLASS_KEYS
    missing = {"id", "name", "emergency", "care", "reply", "why", "sources", "concepts", "examples", "phrasings"} - set(data)
    if unknown or missing:
        raise CatalogueError(f"{where}: unknown keys {sorted(unknown)}, missing {sorted(missing)}")
    if data["emergency"] not in EMERGENCY_LEVELS:
        raise CatalogueError(f"{where}: emergency must be one of {EMERGENCY_LEVELS}")
    if str(data["care"]) not in CARE_LEVELS:
        raise CatalogueError(f"{where}: care must be one of {CARE_LEVELS}")
    sources = data["sources"]
    if not sources or not all(isinstance(s, dict) and s.get("title") and s.get("url") for s in sources):
        raise CatalogueError(f"{where}: every class needs sources with a title and a url")
    concepts = tuple(_concept(name, spec, data["emergency"], where) for name, spec in (data["concepts"] or {}).items())
    if not concepts:
        raise CatalogueError(f"{where}: needs at least one concept")
    return RedFlagClass(
        id=str(data["id"]),
        name=str(data["name"]),
        emergency=data["emergency"],
        care=str(data["care"]),
        reply=str(data["reply"]),
        why=str(data["why"]).strip(),
        sources=tuple(sources),
        concepts=concepts,
        symptoms=_strings(data.get("symptoms"), f"{where}: symptoms"),
        examples=_strings(data["examples"], f"{where}: examples"),
        phrasings=_strings(data["phrasings"], f"{where}: phrasings"),
        not_emergency=_strings(data.get("not_emergency"), f"{where}: not_emergency"),
    )


def load_catalogue(directory: Path) -> Catalogue:
    """Read every ``*.yml`` class file in ``directory`` (a class's id is its file name)."""
    classes: dict[str, RedFlagClass] = {}
    files = sorted(Path(directory).glob("*.yml"))
    if not files:
        raise CatalogueError(f"no red-flag classes in {directory}")
    for path in files:
        cls = parse_class(yaml.safe_load(path.read_text(encoding="utf-8")), path.name)
        if cls.id != path.stem:
            raise CatalogueError(f"{path.name}: id {cls.id!r} differs from the file name")
        classes[cls.id] = cls
    return Catalogue(classes)


@lru_cache(maxsize=4)
def catalogue_in(rules_dir: Path) -> Catalogue:
    """The catalogue of a rules directory (``<rules_dir>/red_flags``), read once per process."""
    return load_catalogue(Path(rules_dir) / CATALOGUE_DIR)
