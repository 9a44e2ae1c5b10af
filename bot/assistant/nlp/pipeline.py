"""Build the project's own spaCy pipeline from the curated pattern files.

No pretrained spaCy model can be downloaded here, so the pipeline starts from
``spacy.blank("en")``, adds a lookup lemmatizer (tables from
``spacy-lookups-data``, with the corrections in ``data/patterns/lemmas.yml``) and an
``entity_ruler`` whose patterns live in ``data/patterns/*.jsonl`` and, for red flags, in the
red-flag catalogue (``data/safety/red_flags/*.yml``, :mod:`bot.core.safety.catalogue`). Rasa's
``SpacyNLP`` loads the saved folder by path.

Phrase patterns match on lemmas, so "pacemaker" also finds "pacemakers" and "passed out"
finds "passing out": an inflection is never listed by hand. A phrase whose lemma would also
match a word of another meaning carries ``"exact": true`` and a ``"why"``, and matches only as
written ("fainted" must not find "a faint bruise"). Lemmas are looked up on lower-case text;
Rasa's ``SpacyNLP`` (``case_sensitive: false``) and the safety screen both lower-case first.

Run ``python -m bot.assistant.nlp.pipeline`` (the Makefile does) to rebuild it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Iterable, Optional

import spacy
import yaml
from spacy.language import Language

from bot.core.paths import SPACY_PIPELINE_DIR
from bot.core.safety.catalogue import catalogue_in

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
PATTERN_DIR = REPO_ROOT / "data" / "patterns"
LEMMA_FILE = PATTERN_DIR / "lemmas.yml"
SAFETY_DIR = REPO_ROOT / "data" / "safety"
DEFAULT_OUTPUT = SPACY_PIPELINE_DIR

#: Entity labels the ruler may emit. The first six are the safety screen's health terms
#: (and Rasa entities, see config.yml); OTHER_TREATMENT names treatments other than dry
#: needling, so FAQ answers are not given to questions about them (bot/assistant/nlp/other_subject.py).
LABELS = ("CONDITION", "MEDICATION", "DEVICE", "BODY_REGION", "SYMPTOM", "RED_FLAG", "OTHER_TREATMENT")


class PatternError(ValueError):
    """A pattern file line is malformed."""


def load_patterns(pattern_dir: Path = PATTERN_DIR, safety_dir: Optional[Path] = SAFETY_DIR) -> list[dict]:
    """Read and check every ``*.jsonl`` pattern file in ``pattern_dir``, then the red-flag
    catalogue's wordings (``safety_dir``; ``None``: pattern files only).

    Raises:
        PatternError: a line is not JSON, lacks ``label``/``pattern``/``id``, uses a
            label outside :data:`LABELS`, or is ``exact`` without a phrase and a ``why``.
    """
    files = sorted(pattern_dir.glob("*.jsonl"))
    if not files:
        raise PatternError(f"no pattern files in {pattern_dir}")
    lines: list[tuple[str, str]] = []
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                lines.append((where, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise PatternError(f"{where}: not JSON ({exc.msg})") from exc
    if safety_dir is not None:
        catalogue = catalogue_in(Path(safety_dir))
        lines += [(f"red flag {item['id']}", item) for item in catalogue.ruler_patterns()]
    return [_checked(where, item) for where, item in lines]


def _checked(where: str, item: dict) -> dict:
    missing = {"label", "pattern", "id"} - item.keys()
    if missing:
        raise PatternError(f"{where}: missing {sorted(missing)}")
    if item["label"] not in LABELS:
        raise PatternError(f"{where}: unknown label {item['label']!r}")
    if item.get("exact") and not (isinstance(item["pattern"], str) and str(item.get("why", "")).strip()):
        raise PatternError(f"{where}: an exact pattern is a phrase and says why")
    if isinstance(item["pattern"], str):
        item["pattern"] = item["pattern"].lower()
    return item


def load_lemma_corrections(path: Path = LEMMA_FILE) -> dict[str, str]:
    """``{word: lemma}`` from ``lemmas.yml``: where the lookup table's lemma is wrong for this domain."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    corrections = {}
    for word, entry in (data.get("corrections") or {}).items():
        if not isinstance(entry, dict) or not entry.get("lemma") or not str(entry.get("why", "")).strip():
            raise PatternError(f"{Path(path).name}: {word!r} needs a lemma and a why")
        corrections[str(word).lower()] = str(entry["lemma"]).lower()
    return corrections


def ruler_patterns(patterns: Iterable[dict], nlp: Language) -> list[dict]:
    """The entity ruler's form of the curated patterns: ``exact`` phrases become LOWER token patterns."""
    converted = []
    for item in patterns:
        pattern = item["pattern"]
        if item.get("exact"):
            pattern = [{"LOWER": token.text} for token in nlp.make_doc(pattern)]
        converted.append({"label": item["label"], "pattern": pattern, "id": item["id"]})
    return converted


def build(patterns: Iterable[dict], corrections: Optional[dict[str, str]] = None) -> Language:
    """Return a blank English pipeline with a lookup lemmatizer and the entity ruler.

    ``corrections`` (default: ``lemmas.yml``) overwrite lookup-table entries; they are saved
    with the pipeline, so Rasa and the safety screen read the same lemmas.
    """
    nlp = spacy.blank("en")
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    # The lookup tables are loaded by initialize(); it must run before the
    # entity ruler is added, otherwise initialize() would clear its patterns.
    nlp.initialize()
    table = lemmatizer.lookups.get_table("lemma_lookup")
    for word, lemma in (load_lemma_corrections() if corrections is None else corrections).items():
        table[word] = lemma
    ruler = nlp.add_pipe(
        "entity_ruler",
        config={"phrase_matcher_attr": "LEMMA", "overwrite_ents": True},
    )
    ruler.add_patterns(ruler_patterns(patterns, nlp))
    nlp.meta["name"] = "dry_needling"
    nlp.meta["description"] = (
        "Blank English pipeline with lookup lemmas and curated entity patterns "
        "(conditions, medications, devices, body regions, symptoms, red flags, other treatments)."
    )
    return nlp


def main(argv: list[str] | None = None) -> None:
    """Build the pipeline and save it (command-line entry point)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=Path, default=PATTERN_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    patterns = load_patterns(args.patterns)
    nlp = build(patterns)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(args.output)
    logger.info("saved spaCy pipeline with %d patterns to %s", len(patterns), args.output)


if __name__ == "__main__":
    main()
