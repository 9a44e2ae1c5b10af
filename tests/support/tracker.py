"""A Rasa SQL tracker store's ``events`` table, written as Rasa 3.6's ``SQLTrackerStore`` writes it.

Same columns (rasa/core/tracker_store.py ``SQLTrackerStore.SQLEvent``) and the same row
content: ``data`` is the event's ``as_dict()`` as JSON text, ``intent_name`` comes from
``parse_data.intent.name`` and ``action_name`` from ``name``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import sqlalchemy as sa

from bot.core.settings import sync_db_url

METADATA = sa.MetaData()
EVENTS = sa.Table(
    "events", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


def user(text: str, timestamp: float, intent: str = "faq", confidence: float = 0.9,
         safety: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    parse_data: dict[str, Any] = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": []}
    if safety is not None:
        parse_data["safety"] = safety
    return {"event": "user", "timestamp": timestamp, "text": text, "parse_data": parse_data,
            "input_channel": "rest", "message_id": "m", "metadata": {}}


def bot(text: str, timestamp: float, metadata: Optional[dict[str, Any]] = None,
        buttons: Optional[list[dict[str, str]]] = None) -> dict[str, Any]:
    return {"event": "bot", "timestamp": timestamp, "text": text, "metadata": metadata or {},
            "data": {"elements": None, "quick_replies": None, "buttons": buttons, "attachment": None,
                     "image": None, "custom": None}}


def event(kind: str, timestamp: float, **extra: Any) -> dict[str, Any]:
    return {"event": kind, "timestamp": timestamp, **extra}


def create_events_table(url: str) -> None:
    engine = sa.create_engine(sync_db_url(url), future=True)
    METADATA.create_all(engine)
    engine.dispose()


def append(url: str, sender_id: str, events: list[dict[str, Any]]) -> None:
    """Store events as Rasa does at the end of a turn."""
    engine = sa.create_engine(sync_db_url(url), future=True)
    with engine.begin() as connection:
        for item in events:
            connection.execute(EVENTS.insert().values(
                sender_id=sender_id, type_name=item["event"], timestamp=item.get("timestamp"),
                intent_name=((item.get("parse_data") or {}).get("intent") or {}).get("name"),
                action_name=item.get("name"), data=json.dumps(item),
            ))
    engine.dispose()
