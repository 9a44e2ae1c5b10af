"""``make compare-features``: does the offline MiniLM featurizer earn its place?

Trains two NLU models on ``data/`` — the project's ``config.yml`` and the same
pipeline with Rasa's ``LanguageModelFeaturizer`` (all-MiniLM-L6-v2 weights
converted by :mod:`bot.nlp.minilm`) — and prints, for each: held-out intent
accuracy, macro-F1, response-selection accuracy, out-of-scope rejection,
training time and the median / p95 time of one NLU parse.
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

from bot.evaluation import nlu
from bot.evaluation.results import percentile, write_results
from bot.evaluation.run import load_agent
from bot.nlp.minilm import DEFAULT_OUTPUT as MINILM_DIR
from bot.nlp.minilm import convert
from bot.settings import REPO_ROOT


def minilm_config(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the MiniLM featurizer added after the sparse featurizers."""
    config = json.loads(json.dumps(base))
    pipeline = config["pipeline"]
    index = max(i for i, c in enumerate(pipeline) if c["name"] == "CountVectorsFeaturizer") + 1
    pipeline.insert(index, {"name": "LanguageModelFeaturizer", "model_name": "bert", "model_weights": str(MINILM_DIR)})
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
    """Train both variants and print the comparison."""
    if not (MINILM_DIR / "tf_model.h5").exists():
        convert()
    base = yaml.safe_load((REPO_ROOT / "config.yml").read_text(encoding="utf-8"))
    holdout = nlu.read_dir(REPO_ROOT / "tests" / "nlu_holdout")
    results = {}
    with tempfile.TemporaryDirectory(prefix="features-") as tmp:
        out = Path(tmp)
        for name, config in (("sparse_only", base), ("with_minilm", minilm_config(base))):
            seconds = train(config, name, out)
            agent = load_agent(out / f"{name}.tar.gz")
            report = nlu.report(nlu.predict(agent, holdout))
            median, p95 = parse_latency(agent, [e.text for e in holdout[:200]])
            results[name] = {
                "intent_accuracy": report.intent_accuracy,
                "intent_macro_f1": report.intent_macro_f1,
                "response_selection_accuracy": report.response_selection_accuracy,
                "out_of_scope_rejection": report.out_of_scope_rejection,
                "train_seconds": seconds,
                "parse_ms_median": median,
                "parse_ms_p95": p95,
            }
    print(f"\n{'':30}{'sparse only':>14}{'with MiniLM':>14}")
    for key in results["sparse_only"]:
        print(f"{key:30}{results['sparse_only'][key]:>14.3f}{results['with_minilm'][key]:>14.3f}")
    write_results("compare_features.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
