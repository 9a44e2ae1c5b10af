"""Helpers shared by the measurement commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.core.settings import REPO_ROOT

RESULTS_DIR = REPO_ROOT / "results"


def write_results(name: str, figures: Any) -> Path:
    """Write figures as JSON to ``results/<name>`` (git-ignored) and say where."""
    path = RESULTS_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    print(f"\nwritten to {path}")
    return path


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile of ``samples`` (``share`` in 0..1)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]
