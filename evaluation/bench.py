"""``make bench``: latency, memory, training and cold-start figures. Prints figures; asserts nothing.

- cold start: seconds from process start until each server answers its health check;
- REST round trip (``POST /webhooks/rest/webhook``) and ``POST /model/parse``: median and
  p95 over many requests, one client, a fresh sender per conversation, after warm-up;
- peak resident memory (VmHWM) of each process after the run;
- full training time (``rasa train --force`` into a temporary folder);
- the staff dashboard's queue and conversation-view response times with 1,000 escalations
  and 50 messages per conversation (:mod:`evaluation.dashboard_bench`, run in the web
  app's environment ``.venv-web``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bot.assistant.servers.rasa_api import auth_header
from bot.core.settings import REPO_ROOT
from bot.core.store.migrate import upgrade
from bot.launch import Stack, free_port
from evaluation.results import percentile, write_results

CONVERSATION = [
    "hi",
    "does dry needling hurt?",
    "how long does the relief last",
    "what should I wear to my appointment",
    "thanks, bye",
]


def stack_env(var: str) -> dict[str, str]:
    """The environment of a stack measured on its own: free ports, ``var`` for its data, the
    SQLite stores, no notifications, and rate limits out of the way."""
    env = {
        **os.environ, "VAR_DIR": var, "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port()),
        "WEB_PORT": str(free_port()), "LOG_LEVEL": "WARNING",
        # /model/parse is the API; the flood of benchmark requests is not abuse.
        "RASA_API": "true", "RATE_SENDER_PER_MINUTE": "1000000", "RATE_ADDRESS_PER_MINUTE": "1000000",
    }
    for key in ("DATABASE_URL", "REDIS_URL", "SMTP_HOST", "NOTIFY_WEBHOOK_URL"):
        env.pop(key, None)
    return env


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process and its children (MiB), from /proc."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        status = Path(f"/proc/{each}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
    return total


def time_requests(call: Any, count: int) -> list[float]:
    """Milliseconds of ``count`` calls."""
    samples = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def train_seconds() -> float:
    """Full training time into a throwaway folder."""
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "rasa"), "train", "--force", "--quiet", "--num-threads", "2", "--out", out],
            check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


def dashboard_figures() -> dict[str, Any]:
    """The dashboard bench, run by the web app's interpreter (it has the dashboard's packages)."""
    web_python = REPO_ROOT / ".venv-web" / "bin" / "python"
    python = str(web_python) if web_python.exists() else sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    done = subprocess.run(
        [python, "-m", "evaluation.dashboard_bench", "--json"], cwd=REPO_ROOT, env=env,
        check=True, stdout=subprocess.PIPE, text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description="Latency, memory and training figures.")
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--parses", type=int, default=300)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-dashboard", action="store_true", help="leave out the staff dashboard's figures")
    parser.add_argument("--dashboard-only", action="store_true", help="only the staff dashboard's figures")
    args = parser.parse_args(argv)

    figures: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    if args.dashboard_only:
        figures["dashboard"] = dashboard_figures()
        print(json.dumps(figures, indent=2))
        write_results("bench-dashboard.json", figures)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-var-") as var:
        stack = Stack(env=stack_env(var), log_dir=Path(var) / "logs")
        upgrade(stack.settings.database_url)
        started = time.perf_counter()
        stack.start()
        try:
            cold: dict[str, float] = {}
            for name in ("actions", "web", "rasa"):
                stack.wait_ready(600, name)
                cold[name] = time.perf_counter() - started
            figures["cold_start_seconds"] = cold
            rasa = f"http://127.0.0.1:{stack.settings.rasa_port}"
            http = requests.Session()
            api = auth_header(stack.settings)

            def say(sender: str, text: str) -> None:
                reply = http.post(f"{rasa}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
                reply.raise_for_status()

            for text in CONVERSATION:  # warm-up
                say(f"warmup-{uuid.uuid4().hex}", text)
            rest: list[float] = []
            for _ in range(args.conversations):
                sender = f"bench-{uuid.uuid4().hex}"
                rest += time_requests(lambda i, s=sender: say(s, CONVERSATION[i]), len(CONVERSATION))

            def parse(index: int) -> None:
                text = CONVERSATION[index % len(CONVERSATION)]
                reply = http.post(f"{rasa}/model/parse", json={"text": text}, headers=api, timeout=60)
                reply.raise_for_status()

            time_requests(parse, 20)  # warm-up
            parses = time_requests(parse, args.parses)
            figures["rest_round_trip_ms"] = {
                "requests": len(rest), "median": statistics.median(rest), "p95": percentile(rest, 0.95),
            }
            figures["model_parse_ms"] = {
                "requests": len(parses), "median": statistics.median(parses), "p95": percentile(parses, 0.95),
            }
            figures["peak_rss_mb"] = {
                name: peak_rss_mb(service.process.pid) for name, service in stack.services.items() if service.process
            }
        finally:
            stack.stop()
    if not args.skip_dashboard:
        figures["dashboard"] = dashboard_figures()
    if not args.skip_training:
        figures["full_training_seconds"] = train_seconds()

    print(json.dumps(figures, indent=2))
    write_results("bench.json", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
