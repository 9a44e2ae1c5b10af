"""``make compare-features``: which features and classifier earn their place?

Trains three NLU pipelines on ``data/`` and evaluates each on the blind held-out
set (``evaluation/sets/nlu_holdout``), printing intent accuracy, macro-F1,
response-selection accuracy, out-of-scope rejection, NLU training time and the
median / p95 time of one parse:

* ``diet_sparse``: the pipeline this project started with: word and character
  n-gram counts, lexical features, ``DIETClassifier`` and ``ResponseSelector``
  (40 epochs each, one small transformer layer), fallback at 0.6;
* ``linear_sparse``: the same counts into :class:`LinearIntentClassifier`;
* ``linear_minilm``: ``config.yml`` (counts plus the MiniLM sentence embedding).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bot.assistant.nlp.minilm import DEFAULT_OUTPUT as MINILM_DIR
from bot.assistant.nlp.minilm import convert
from bot.core.settings import REPO_ROOT
from evaluation import nlu
from evaluation.results import percentile, write_results
from evaluation.run import load_agent

SENTENCE = "bot.assistant.nlp.sentence_featurizer.SentenceEmbeddingFeaturizer"
LINEAR = "bot.assistant.nlp.linear_classifier.LinearIntentClassifier"


def _copy(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config))


def linear_sparse_config(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` without the MiniLM sentence embedding."""
    config = _copy(base)
    config["pipeline"] = [c for c in config["pipeline"] if c["name"] != SENTENCE]
    return config


def diet_sparse_config(base: dict[str, Any]) -> dict[str, Any]:
    """The original pipeline: sparse features into DIET and the ResponseSelector."""
    config = linear_sparse_config(base)
    pipeline = []
    for component in config["pipeline"]:
        if component["name"] == "RegexFeaturizer":
            pipeline += [component, {"name": "LexicalSyntacticFeaturizer"}]
        elif component["name"] == LINEAR:
            pipeline += [
                {"name": "DIETClassifier", "epochs": 40, "number_of_transformer_layers": 1, "transformer_size": 128,
                 "entity_recognition": False, "constrain_similarities": True, "random_seed": 42},
                {"name": "ResponseSelector", "retrieval_intent": "faq", "epochs": 40,
                 "constrain_similarities": True, "random_seed": 42},
            ]
        elif component["name"] == "FallbackClassifier":
            pipeline.append({**component, "threshold": 0.6, "ambiguity_threshold": 0.1})
        else:
            pipeline.append(component)
    config["pipeline"] = pipeline
    return config


def train(config: dict[str, Any], name: str, out: Path) -> float:
    """Train an NLU model with ``config``; return the training time in seconds."""
    config_path = out / f"{name}.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), "train", "nlu", "--quiet", "--nlu", str(REPO_ROOT / "data"),
         "--config", str(config_path), "--domain", str(REPO_ROOT / "domain.yml"),
         "--out", str(out), "--fixed-model-name", name],
        check=True, cwd=REPO_ROOT,
    )
    return time.perf_counter() - started


def parse_latency(agent: Any, texts: list[str]) -> tuple[float, float]:
    """Median and p95 milliseconds of one NLU parse."""
    import asyncio

    async def timed() -> list[float]:
        for text in texts[:10]:
            await agent.parse_message(text)  # warm-up
        samples = []
        for text in texts:
            started = time.perf_counter()
            await agent.parse_message(text)
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    samples = asyncio.run(timed())
    return statistics.median(samples), percentile(samples, 0.95)


def main() -> int:
    """Train the three variants and print the comparison."""
    if not (MINILM_DIR / "tf_model.h5").exists():
        convert()
    base = yaml.safe_load((REPO_ROOT / "config.yml").read_text(encoding="utf-8"))
    holdout = nlu.read_dir(REPO_ROOT / "evaluation" / "sets" / "nlu_holdout")
    variants = {
        "diet_sparse": diet_sparse_config(base),
        "linear_sparse": linear_sparse_config(base),
        "linear_minilm": base,
    }
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="features-") as tmp:
        out = Path(tmp)
        for name, config in variants.items():
            seconds = train(config, name, out)
            agent = load_agent(out / f"{name}.tar.gz")
            report = nlu.report(nlu.predict(agent, holdout))
            median, p95 = parse_latency(agent, [e.text for e in holdout[:200]])
            results[name] = {
                "intent_accuracy": report.intent_accuracy,
                "intent_macro_f1": report.intent_macro_f1,
                "response_selection_accuracy": report.response_selection_accuracy,
                "out_of_scope_rejection": report.out_of_scope_rejection,
                "out_of_scope_given_faq": report.out_of_scope_given_faq,
                "staff_routed": report.staff_routed,
                "train_seconds": seconds,
                "parse_ms_median": median,
                "parse_ms_p95": p95,
            }
    print(f"\n{'':30}" + "".join(f"{name:>16}" for name in results))
    for key in results["linear_minilm"]:
        print(f"{key:30}" + "".join(f"{results[name][key]:>16.3f}" for name in results))
    write_results("compare_features.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
