"""The evidence behind the semantic red-flag detector's threshold (``data/safety/semantic.yml``).

For a range of global thresholds, and for the thresholds as set (global and per class), it prints, from the training data and the red-flag catalogue only
(no evaluation set is read):

* ``ordinary proposed``: ordinary training messages (``data/nlu``, every intent that is not
  staff-bound) in which the detector proposes a red flag in any clause (before the screen
  leaves clauses with a listed health word to the lexical detector);
* ``ordinary emergency``: of those, how many the whole screen then sends down the emergency
  path (ConText and the table may still rule a proposal out);
* ``examples alone``: the catalogue's report examples the detector finds on its own, with
  the lexical detector switched off (its independent recall);
* ``not-emergency``: the catalogue's not-emergency examples the whole screen sends down the
  emergency path.

Run: ``python -m evaluation.semantic_threshold``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from bot.assistant.nlp.sentence_featurizer import DEFAULT_MODEL_PATH, load_encoder
from bot.core.safety.catalogue import catalogue_in
from bot.core.safety.decision import RULES_DIR
from bot.core.safety.screen import default_screen
from bot.core.safety.semantic import clauses
from bot.core.settings import REPO_ROOT
from evaluation.nlu import read_dir

STAFF_INTENTS = {"report_adverse_event", "ask_contraindication", "request_human"}


def main(argv: list[str] | None = None) -> None:
    """Print the threshold table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", default="0.60,0.62,0.64,0.66,0.68,0.70,0.72,0.74,0.76,0.78,0.80")
    args = parser.parse_args(argv)
    encoder = load_encoder(str(REPO_ROOT / DEFAULT_MODEL_PATH), 128)
    screen = default_screen()
    screen.attach_encoder(encoder.encode)
    detector = screen.semantic
    catalogue = catalogue_in(RULES_DIR)
    ordinary = [e.text for e in read_dir(REPO_ROOT / "data" / "nlu") if e.intent.split("/")[0] not in STAFF_INTENTS]
    examples = [(cls.id, text) for cls in catalogue.classes.values() for text in cls.examples]
    not_emergency = [text for cls in catalogue.classes.values() for text in cls.not_emergency]
    base = detector.config
    print(f"{len(ordinary)} ordinary training messages, {len(examples)} catalogue examples, "
          f"{len(not_emergency)} not-emergency examples")
    # Each clause's nearest phrasing is computed once; a threshold only filters.
    ordinary_best = [_best(screen, detector, text) for text in ordinary]
    example_best = [(cls, _best_per_class(screen, detector, text)) for cls, text in examples]
    print(f"{'threshold':>9} {'ordinary proposed':>18} {'ordinary emergency':>19} {'examples alone':>15} {'not-emergency':>14}")
    settings = [(f"{float(t):.2f}", replace(base, threshold=float(t), class_thresholds={})) for t in args.thresholds.split(",")]
    for label, config in settings + [("as set", base)]:
        detector.config = config
        candidates = [text for text, best in zip(ordinary, ordinary_best) if best >= min(_thresholds(config))]
        proposed = sum(bool(detector.propose(screen.parse(text))) for text in candidates)
        emergency = sum(_semantic_decided(screen(text)) for text in candidates)
        alone = sum(scores.get(cls, 0.0) >= detector.threshold_for(cls) for cls, scores in example_best)
        wrong = sum(screen(text).reason == "emergency" for text in not_emergency)
        print(f"{label:>9} {proposed:>18} {emergency:>19} {alone:>9}/{len(examples):<5} {wrong:>14}")
    detector.config = base


def _thresholds(config) -> list[float]:
    return [config.threshold, *config.class_thresholds.values()]


def _best(screen, detector, text: str) -> float:
    """The highest similarity of any clause of ``text`` to any phrasing."""
    pieces = clauses(screen.parse(text), detector.config.split_words, detector.config.min_words)
    return max((score for _, score in detector.scores([p.text for p in pieces])), default=0.0)


def _best_per_class(screen, detector, text: str) -> dict[str, float]:
    """Per class, the highest similarity of a clause whose nearest phrasing is of that class."""
    pieces = clauses(screen.parse(text), detector.config.split_words, detector.config.min_words)
    best: dict[str, float] = {}
    for index, score in detector.scores([p.text for p in pieces]):
        cls = detector.anchor(index)[0]
        best[cls] = max(best.get(cls, 0.0), score)
    return best


def _semantic_decided(verdict) -> bool:
    return any(e.detector == "semantic" and e.gives_reason for e in verdict.evidence)


if __name__ == "__main__":
    main()
