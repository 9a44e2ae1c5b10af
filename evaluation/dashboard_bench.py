"""Staff dashboard response times with a realistic store: ``python -m evaluation.dashboard_bench``.

Runs in the web app's environment (``.venv-web``; ``make bench`` starts it from
:mod:`evaluation.bench`). It seeds a temporary SQLite escalation store with
1,000 escalations and a tracker store (Rasa's ``events`` table, rows as Rasa writes
them) with 50 messages per conversation, serves the real web app (authentication
included: an API token) on a loopback port, and times whole HTTP round trips, one
client, after a warm-up:

- the queue: ``GET /staff/api/escalations`` (first page, with each row's latest
  patient message from the tracker store), filtered, and searched (POST);
- one case: ``GET /staff/api/escalations/{id}``;
- the conversation view: ``GET /staff/api/escalations/{id}/conversation``;
- the HTML pages, where the app has them: the queue ``/staff/`` and the
  conversation page ``/staff/escalations/{id}``.

Prints median and p95 in milliseconds; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from bot.core.settings import Settings, sync_db_url
from bot.core.store.db import create_engine, session_factory
from bot.core.store.migrate import upgrade
from bot.core.store.models import Escalation, StaffRole
from bot.core.vocabulary import vocabulary
from bot.dashboard.staff import accounts, tokens
from evaluation.results import percentile

#: Reasons and how often each is seeded; their priorities are the decision table's (bot/core/vocabulary.py).
REASONS = [("emergency", 0.05), ("adverse_event", 0.15), ("contraindication", 0.5), ("human_request", 0.3)]
STATUSES = [("new", 0.3), ("in_progress", 0.2), ("resolved", 0.5)]
PATIENT = ["is dry needling safe for me", "I'm on blood thinners", "my shoulder is still sore",
           "can I have it while pregnant", "I felt dizzy after the session", "can someone call me back"]
ASSISTANT = ["Thanks for asking.", "A physiotherapist needs to check this with you.",
             "Some soreness for a day or two is common.", "I've passed this to our team."]

EVENTS = sa.Table(
    "events", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


def _pick(rng: random.Random, weighted: list[tuple]) -> tuple:
    return rng.choices(weighted, weights=[item[-1] for item in weighted])[0]


def seed_store(url: str, count: int, rng: random.Random, now: datetime) -> list[tuple[str, str]]:
    """``count`` escalations over the last 30 days; returns (id, sender_id) pairs."""
    upgrade(url)
    rows, pairs = [], []
    for index in range(count):
        reason, _ = _pick(rng, REASONS)
        priority = vocabulary().priority[reason]
        status, _ = _pick(rng, STATUSES)
        created = now - timedelta(minutes=rng.randint(0, 30 * 24 * 60))
        case_id, sender = str(uuid.uuid4()), f"bench-{index:05d}"
        consent = rng.random() < 0.7
        pairs.append((case_id, sender))
        rows.append({
            "id": case_id, "created_at": created, "updated_at": created, "channel": rng.choice(["rest", "socketio"]),
            "sender_id": sender, "reason": reason, "priority": priority, "status": status,
            "trigger": {"intent": "ask_contraindication", "confidence": 0.93, "matched_terms": ["pregnancy:pregnant"],
                        "message": PATIENT[index % len(PATIENT)], "at": created.isoformat()},
            "transcript": [{"from": "patient" if turn % 2 == 0 else "assistant",
                            "text": (PATIENT if turn % 2 == 0 else ASSISTANT)[(index + turn) % 4]} for turn in range(10)],
            "contact_name": f"Patient {index}" if consent else None,
            "contact_method": "phone" if consent else None,
            "contact_detail": f"07700 9{index:05d}" if consent else None,
            "consent_given": consent or None, "consent_at": created if consent else None,
            "occurrences": 1, "attempts": 0, "resolved_at": created + timedelta(hours=3) if status == "resolved" else None,
        })
    engine = sa.create_engine(sync_db_url(url), future=True)
    with engine.begin() as connection:
        connection.execute(Escalation.__table__.insert(), rows)
    engine.dispose()
    return pairs


def seed_tracker(url: str, pairs: list[tuple[str, str]], messages: int, now: datetime) -> int:
    """``messages`` messages per conversation (patient and assistant in turn), with Rasa's action events."""
    engine = sa.create_engine(sync_db_url(url), future=True)
    EVENTS.metadata.create_all(engine)
    total = 0
    with engine.begin() as connection:
        for number, (_, sender) in enumerate(pairs):
            start = (now - timedelta(days=1)).timestamp() + number
            rows = [{"sender_id": sender, "type_name": "session_started", "timestamp": start,
                     "data": json.dumps({"event": "session_started", "timestamp": start})}]
            for turn in range(messages // 2):
                at = start + turn * 30
                text = PATIENT[turn % len(PATIENT)]
                rows.append({"sender_id": sender, "type_name": "user", "timestamp": at, "intent_name": "faq",
                             "data": json.dumps({"event": "user", "timestamp": at, "text": text, "parse_data": {
                                 "text": text, "intent": {"name": "faq", "confidence": 0.91}, "entities": [],
                                 "safety": {"reason": None, "matched_terms": [], "personal": False}}})})
                rows.append({"sender_id": sender, "type_name": "action", "timestamp": at + 1, "action_name": "utter_x",
                             "data": json.dumps({"event": "action", "timestamp": at + 1, "name": "utter_x"})})
                rows.append({"sender_id": sender, "type_name": "bot", "timestamp": at + 1,
                             "data": json.dumps({"event": "bot", "timestamp": at + 1,
                                                 "text": ASSISTANT[turn % len(ASSISTANT)], "metadata": {}})})
                rows.append({"sender_id": sender, "type_name": "action", "timestamp": at + 2,
                             "action_name": "action_listen",
                             "data": json.dumps({"event": "action", "timestamp": at + 2, "name": "action_listen"})})
            connection.execute(EVENTS.insert(), rows)
            total += len(rows)
    engine.dispose()
    return total


async def api_token(database_url: str) -> str:
    """A staff account and an API token for it."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            user = await accounts.create_user(session, "bench", accounts.generate_password(), role=StaffRole.staff,
                                              display_name="Bench", actor="bench")
            token, _ = await tokens.issue(session, user, "bench", actor="bench")
        return token
    finally:
        await engine.dispose()


async def time_calls(call: Callable[[int], Awaitable[None]], count: int, warmup: int) -> dict[str, float]:
    for index in range(warmup):
        await call(index)
    samples = []
    for index in range(count):
        started = time.perf_counter()
        await call(index)
        samples.append((time.perf_counter() - started) * 1000)
    return {"requests": count, "median": statistics.median(samples), "p95": percentile(samples, 0.95)}


async def run(escalations: int, messages: int, requests: int, warmup: int) -> dict[str, Any]:
    from bot.dashboard.web.app import create_app  # after the environment is set up

    rng = random.Random(13)
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        var = Path(folder) / "var"
        store, tracker_url = f"sqlite:///{var / 'escalations.db'}", f"sqlite:///{var / 'tracker.db'}"
        started = time.perf_counter()
        pairs = seed_store(store, escalations, rng, now)
        events = seed_tracker(tracker_url, pairs, messages, now)
        seeding = time.perf_counter() - started
        token = await api_token(store)
        settings = Settings(
            var_dir=var, database_url=store, tracker_store_url=tracker_url, public_web_url="http://127.0.0.1",
            session_secret="bench", staff_bridge_secret="bench", staff_bridge_url="http://127.0.0.1:9",
            notify_interval_seconds=3600, log_level="WARNING",
        )
        server = TestServer(create_app(settings), host="127.0.0.1")
        await server.start_server()
        figures: dict[str, Any] = {
            "escalations": escalations, "messages_per_conversation": messages, "tracker_event_rows": events,
            "seeding_seconds": round(seeding, 1),
        }
        try:
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                base = str(server.make_url(""))
                ids = [case_id for case_id, _ in pairs]

                def get(path: str, expect: int = 200) -> Callable[[int], Awaitable[None]]:
                    async def call(index: int) -> None:
                        url = base + path.format(id=ids[(index * 7919) % len(ids)])
                        async with http.get(url, allow_redirects=False) as reply:
                            await reply.read()
                            if reply.status != expect:
                                raise RuntimeError(f"{path} answered {reply.status}")
                    return call

                async def search(index: int) -> None:
                    async with http.post(base + "/staff/api/escalations/search",
                                         json={"search": PATIENT[index % len(PATIENT)].split()[-1]}) as reply:
                        await reply.read()
                        if reply.status != 200:
                            raise RuntimeError(f"search answered {reply.status}")

                measured = {
                    "queue_api_ms": get("/staff/api/escalations"),
                    "queue_api_open_urgent_ms": get("/staff/api/escalations?status=new,in_progress&priority=urgent"),
                    "queue_search_api_ms": search,
                    "case_api_ms": get("/staff/api/escalations/{id}"),
                    "conversation_api_ms": get("/staff/api/escalations/{id}/conversation"),
                    "queue_page_ms": get("/staff/"),
                    "conversation_page_ms": get("/staff/escalations/{id}"),
                }
                for name, call in measured.items():
                    try:
                        figures[name] = await time_calls(call, requests, warmup)
                    except RuntimeError as exc:
                        figures[name] = {"skipped": str(exc)}
        finally:
            await server.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Staff dashboard response times with a seeded store.")
    parser.add_argument("--escalations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50, help="messages per conversation")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print only the JSON figures (for make bench)")
    args = parser.parse_args(argv)
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    figures = asyncio.run(run(args.escalations, args.messages, args.requests, args.warmup))
    figures["machine"] = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(figures, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
