"""``make profile``: where a REST turn's time goes. Prints a table; asserts nothing.

The stack is started as ``make bench`` starts it (:class:`bot.launch.Stack`, a throwaway
``VAR_DIR``, SQLite), except that the Rasa server runs under this module
(``--serve``): before handing over to :func:`bot.assistant.servers.rasa.main` it wraps,
with wall-clock timers, the stages of a turn inside Rasa:

* ``Agent.handle_message``: the whole turn inside Rasa;
* NLU: ``MessageProcessor._parse_message_with_graph``, and each graph node it runs (spaCy,
  featurizers, MiniLM, classifiers, the safety screen...);
* policies: ``MessageProcessor._predict_next_with_tracker`` (every prediction of the turn),
  and each policy node;
* the action-server calls (``GuardedActionEndpoint.request``), the tracker store
  (``SQLTrackerStore`` retrieve and save) and response rendering (``ClinicNLG.generate``).

The driver sends ``--turns`` FAQ questions over ``POST /webhooks/rest/webhook`` (a fresh
sender every five, so session starts are in the mix), then ``--parses`` calls of
``POST /model/parse``, and asks the server (SIGUSR1) for its timings. "channel and HTTP"
is the client's round trip less ``handle_message``: Sanic, the REST channel, JSON, the
loopback. ``--cprofile`` also runs cProfile around each turn and prints the functions with
the most cumulative time (it slows the turn down: compare stage times from runs without it).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import os
import pstats
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Optional

FAQ = [
    "does dry needling hurt?",
    "how long does the relief last",
    "what should I wear to my appointment",
    "is dry needling the same as acupuncture",
    "how many sessions will I need",
]
TURNS_PER_SENDER = 5

# -- the Rasa server side (--serve) ------------------------------------------------------

_turns: list[dict[str, float]] = []
_current: Optional[dict[str, float]] = None
_stage: list[str] = []
_profiler: Optional[cProfile.Profile] = None


def _add(key: str, seconds: float) -> None:
    if _current is not None:
        _current[key] = _current.get(key, 0.0) + seconds * 1000


def _timed_sync(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _stage.append(name)
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - started)
            _stage.pop()

    return wrapper


def _timed_async(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - started)

    return wrapper


def node_label(node_name: str) -> str:
    """``run_bot.assistant.nlp.sentence_featurizer.SentenceEmbeddingFeaturizer3`` -> ``SentenceEmbeddingFeaturizer3``."""
    return node_name.removeprefix("run_").rsplit(".", 1)[-1]


def instrument() -> None:
    """Wrap the stages of a turn with timers (in the Rasa server process, before it serves)."""
    from rasa.core.agent import Agent
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.engine.graph import GraphNode

    from bot.assistant.nlg import ClinicNLG
    from bot.assistant.servers.action_client import GuardedActionEndpoint

    handle = Agent.handle_message

    @functools.wraps(handle)
    async def handle_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _current
        _current = {}
        if _profiler is not None:
            _profiler.enable()
        started = time.perf_counter()
        try:
            return await handle(self, *args, **kwargs)
        finally:
            _add("turn inside Rasa (handle_message)", time.perf_counter() - started)
            if _profiler is not None:
                _profiler.disable()
            _turns.append(_current)
            _current = None

    Agent.handle_message = handle_message  # type: ignore[method-assign]
    MessageProcessor._parse_message_with_graph = _timed_sync(  # type: ignore[method-assign]
        "NLU", MessageProcessor._parse_message_with_graph
    )
    MessageProcessor._predict_next_with_tracker = _timed_sync(  # type: ignore[method-assign]
        "policies", MessageProcessor._predict_next_with_tracker
    )
    call = GraphNode.__call__

    @functools.wraps(call)
    def node_call(self: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(self, *args)
        finally:
            where = _stage[-1] if _stage else "other graph"
            _add(f"{where}: {node_label(self._node_name)}", time.perf_counter() - started)

    GraphNode.__call__ = node_call  # type: ignore[method-assign]
    GuardedActionEndpoint.request = _timed_async(  # type: ignore[method-assign]
        "action server calls", GuardedActionEndpoint.request
    )
    for method in ("retrieve", "retrieve_full_tracker", "save"):
        setattr(SQLTrackerStore, method, _timed_async(f"tracker store: {method}", getattr(SQLTrackerStore, method)))
    ClinicNLG.generate = _timed_async("response rendering (NLG)", ClinicNLG.generate)  # type: ignore[method-assign]


def serve(output: Path, with_cprofile: bool) -> None:
    """Run the Rasa server, instrumented; SIGUSR1 writes the timings to ``output``."""
    global _profiler
    if with_cprofile:
        _profiler = cProfile.Profile()

    def dump(_signum: int, _frame: Any) -> None:
        figures: dict[str, Any] = {"turns": _turns}
        if _profiler is not None:
            text = io.StringIO()
            pstats.Stats(_profiler, stream=text).sort_stats("cumulative").print_stats(35)
            figures["cprofile"] = text.getvalue()
        partial = output.with_suffix(".partial")
        partial.write_text(json.dumps(figures), encoding="utf-8")
        partial.replace(output)

    signal.signal(signal.SIGUSR1, dump)
    from bot.assistant.runtime import pin_threads
    from bot.assistant.servers import rasa

    pin_threads()  # rasa.main() does it too; here before instrument() imports TensorFlow
    instrument()
    rasa.main()


# -- the driver ---------------------------------------------------------------------------


def summarise(turns: list[dict[str, float]], round_trips: list[float]) -> list[tuple[str, float, float, float]]:
    """Rows ``(stage, median, p95, mean)`` in ms per turn, a stage absent from a turn counting 0."""
    from evaluation.results import percentile

    keys: list[str] = []
    for turn in turns:
        keys += [key for key in turn if key not in keys]
    columns: dict[str, list[float]] = defaultdict(list)
    for turn, trip in zip(turns, round_trips):
        for key in keys:
            columns[key].append(turn.get(key, 0.0))
        columns["channel and HTTP (round trip - handle_message)"].append(
            trip - turn.get("turn inside Rasa (handle_message)", 0.0)
        )
        columns["client round trip"].append(trip)
    order = sorted(columns, key=lambda key: (key != "client round trip", -statistics.mean(columns[key])))
    return [
        (key, statistics.median(columns[key]), percentile(columns[key], 0.95), statistics.mean(columns[key]))
        for key in order
    ]


def table(rows: list[tuple[str, float, float, float]]) -> str:
    """A Markdown table of the rows."""
    lines = ["| stage | median ms | p95 ms | mean ms |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {median:.1f} | {p95:.1f} | {mean:.1f} |" for name, median, p95, mean in rows]
    return "\n".join(lines)


def rss_mb(pid: int) -> dict[str, float]:
    """Current and peak resident memory of a process (MiB)."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            figures[line.split(":")[0]] = int(line.split()[1]) / 1024
    return figures


def main(argv: list[str] | None = None) -> int:
    """Start the stack, send the turns, print time per stage."""
    parser = argparse.ArgumentParser(description="Time per stage of a REST turn.")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--parses", type=int, default=100)
    parser.add_argument("--cprofile", action="store_true", help="also cProfile each turn (slower turns)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.cprofile)
        return 0

    import requests

    from bot.assistant.servers.rasa_api import auth_header
    from bot.core.store.migrate import upgrade
    from bot.launch import PYTHON, Stack
    from evaluation.bench import stack_env
    from evaluation.results import percentile, write_results

    with tempfile.TemporaryDirectory(prefix="profile-var-") as var:
        stack = Stack(env=stack_env(var), log_dir=Path(var) / "logs")
        output = Path(var) / "profile.json"
        command = [PYTHON, "-m", "evaluation.profile_turn", "--serve", str(output)]
        stack.services["rasa"].command = command + (["--cprofile"] if args.cprofile else [])
        upgrade(stack.settings.database_url)
        stack.start("actions", "rasa")
        try:
            stack.wait_ready(600, "actions", "rasa")
            rasa = f"http://127.0.0.1:{stack.settings.rasa_port}"
            http = requests.Session()

            def say(sender: str, text: str) -> float:
                started = time.perf_counter()
                reply = http.post(f"{rasa}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
                reply.raise_for_status()
                return (time.perf_counter() - started) * 1000

            warmup = f"warmup-{uuid.uuid4().hex}"
            for text in FAQ * 2:
                say(warmup, text)
            pid = stack.services["rasa"].process.pid
            os.kill(pid, signal.SIGUSR1)
            skipped = len(wait_for(output)["turns"])
            output.unlink()
            trips: list[float] = []
            sender = ""
            for index in range(args.turns):
                if index % TURNS_PER_SENDER == 0:
                    sender = f"profile-{uuid.uuid4().hex}"
                trips.append(say(sender, FAQ[index % len(FAQ)]))
            api = auth_header(stack.settings)
            parses = []
            for index in range(args.parses):
                started = time.perf_counter()
                http.post(f"{rasa}/model/parse", json={"text": FAQ[index % len(FAQ)]}, headers=api, timeout=60).raise_for_status()
                parses.append((time.perf_counter() - started) * 1000)
            os.kill(pid, signal.SIGUSR1)
            figures = wait_for(output)
            memory = rss_mb(pid)
        finally:
            stack.stop()
    turns = figures["turns"][skipped:skipped + args.turns]
    rows = summarise(turns, trips)
    print(f"{len(turns)} REST turns (FAQ questions, a fresh sender every {TURNS_PER_SENDER}), one client:\n")
    print(table(rows))
    parse = {"requests": len(parses), "median": statistics.median(parses), "p95": percentile(parses, 0.95)}
    print(f"\nPOST /model/parse: median {parse['median']:.1f} ms, p95 {parse['p95']:.1f} ms ({len(parses)} calls)")
    print(f"Rasa server memory: RSS {memory.get('VmRSS', 0):.0f} MiB, peak {memory.get('VmHWM', 0):.0f} MiB")
    if "cprofile" in figures:
        print("\ncProfile, cumulative, over the turns:\n" + figures["cprofile"])
    write_results("profile.json", {
        "stages_ms": [dict(zip(("stage", "median", "p95", "mean"), row)) for row in rows],
        "model_parse_ms": parse, "rasa_memory_mb": memory,
        "threads": os.environ.get("RASA_THREADS", "1"),
    })
    return 0


def wait_for(path: Path, timeout: float = 30.0) -> dict[str, Any]:
    """The timings the server wrote to ``path``."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the Rasa server wrote no timings (see its log)")
        time.sleep(0.05)
    return json.loads(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())
