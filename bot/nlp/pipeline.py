"""Build the project's own spaCy pipeline from the curated pattern files.

No pretrained spaCy model can be downloaded here, so the pipeline starts from
``spacy.blank("en")``, adds a lookup lemmatizer (tables from
``spacy-lookups-data``) and an ``entity_ruler`` whose patterns live in
``data/patterns/*.jsonl``. Rasa's ``SpacyNLP`` loads the saved folder by path.

Run ``python -m bot.nlp.pipeline`` (the Makefile does) to rebuild it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Iterable

import spacy
from spacy.language import Language

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PATTERN_DIR = REPO_ROOT / "data" / "patterns"
DEFAULT_OUTPUT = REPO_ROOT / "build" / "spacy" / "en_dry_needling"

#: Entity labels the ruler may emit. The first six are the safety screen's health terms
#: (and Rasa entities, see config.yml); OTHER_TREATMENT names treatments other than dry
#: needling, so FAQ answers are not given to questions about them (bot/nlp/other_subject.py).
LABELS = ("CONDITION", "MEDICATION", "DEVICE", "BODY_REGION", "SYMPTOM", "RED_FLAG", "OTHER_TREATMENT")


class PatternError(ValueError):
    """A pattern file line is malformed."""


def load_patterns(pattern_dir: Path = PATTERN_DIR) -> list[dict]:
    """Read and check every ``*.jsonl`` pattern file in ``pattern_dir``.

    Raises:
        PatternError: a line is not JSON, lacks ``label``/``pattern``/``id``, or
            uses a label outside :data:`LABELS`.
    """
    patterns: list[dict] = []
    files = sorted(pattern_dir.glob("*.jsonl"))
    if not files:
        raise PatternError(f"no pattern files in {pattern_dir}")
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PatternError(f"{where}: not JSON ({exc.msg})") from exc
            missing = {"label", "pattern", "id"} - item.keys()
            if missing:
                raise PatternError(f"{where}: missing {sorted(missing)}")
            if item["label"] not in LABELS:
                raise PatternError(f"{where}: unknown label {item['label']!r}")
            if isinstance(item["pattern"], str):
                item["pattern"] = item["pattern"].lower()
            patterns.append(item)
    return patterns


def build(patterns: Iterable[dict]) -> Language:
    """Return a blank English pipeline with a lookup lemmatizer and the entity ruler."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    # The lookup tables are loaded by initialize(); it must run before the
    # entity ruler is added, otherwise initialize() would clear its patterns.
    nlp.initialize()
    ruler = nlp.add_pipe(
        "entity_ruler",
        config={"phrase_matcher_attr": "LOWER", "overwrite_ents": True},
    )
    ruler.add_patterns(list(patterns))
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
