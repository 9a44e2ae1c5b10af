"""Reading the whole conversation from Rasa's SQL tracker store (a real SQLite ``events`` table)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.core.settings import Settings
from bot.dashboard.staff.conversation import TrackerReader, TrackerUnavailable
from bot.launch import free_port
from tests.support import tracker

T = 1_772_442_000.0  # 2026-03-02 09:00:00 UTC
SAFETY = {
    "reason": "contraindication", "matched_terms": ["pregnancy:pregnant"], "personal": True, "third_party": False,
    "rerouted": True, "demoted": False, "model_intent": {"name": "faq", "confidence": 0.41},
    "model_ranking": [{"name": "faq", "confidence": 0.41}] * 10,
}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T + seconds, tz=timezone.utc)


@pytest.fixture
def tracker_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    tracker.create_events_table(url)
    return url


@pytest.fixture
async def reader(tracker_url):
    reader = TrackerReader(tracker_url)
    yield reader
    await reader.close()


def conversation(url: str, sender: str = "conv-1") -> None:
    tracker.append(url, sender, [
        tracker.event("action", T, name="action_session_start"),
        tracker.event("session_started", T),
        tracker.event("action", T, name="action_listen"),
        tracker.user("hi", T + 10, intent="greet", confidence=0.99),
        tracker.event("action", T + 11, name="utter_greet"),
        tracker.bot("Hello! Ask me about dry needling.", T + 11,
                    buttons=[{"title": "Does it hurt?", "payload": "/faq"}]),
        tracker.event("slot", T + 11, name="escalation_reason", value=None),
        tracker.user("I'm pregnant, can I have it?", T + 20, intent="ask_contraindication", confidence=1.0,
                     safety=SAFETY),
        tracker.bot("A physiotherapist needs to check this with you.", T + 21),
        tracker.user("<img src=x onerror=alert(1)>", T + 100, intent="nlu_fallback", confidence=0.3),
        tracker.event("pause", T + 110),
        tracker.bot("Hello, this is Sam from the clinic.", T + 120, metadata={"staff": {"name": "Sam"}}),
        tracker.user("thank you", T + 130, intent="thanks"),
        tracker.event("resume", T + 140),
    ])


TRIGGER = {"message": "I'm pregnant, can I have it?", "at": at(21).isoformat(), "intent": "ask_contraindication"}


async def test_the_conversation_shows_patient_assistant_and_staff_turns_with_markers(tracker_url, reader):
    conversation(tracker_url)
    tracker.append(tracker_url, "someone-else", [tracker.user("not this one", T + 50)])

    found = await reader.conversation("conv-1", escalated_at=at(22), trigger=TRIGGER)

    assert [(turn.kind, turn.text) for turn in found.turns] == [
        ("session_started", None),
        ("patient", "hi"),
        ("assistant", "Hello! Ask me about dry needling."),
        ("patient", "I'm pregnant, can I have it?"),
        ("assistant", "A physiotherapist needs to check this with you."),
        ("patient", "<img src=x onerror=alert(1)>"),
        ("paused", None),
        ("staff", "Hello, this is Sam from the clinic."),
        ("patient", "thank you"),
        ("resumed", None),
    ]
    assert found.available and found.omitted == 0
    greeting, question = found.turns[1], found.turns[3]
    assert (greeting.intent, greeting.confidence, greeting.at) == ("greet", 0.99, at(10))
    assert found.turns[2].buttons == ("Does it hurt?",)
    assert found.turns[7].staff_name == "Sam"
    assert question.safety["matched_terms"] == ["pregnancy:pregnant"] and question.safety["rerouted"] is True
    assert question.safety["model_intent"] == {"name": "faq", "confidence": 0.41}
    assert "model_ranking" not in question.safety


async def test_turns_after_the_escalation_and_the_trigger_are_marked(tracker_url, reader):
    conversation(tracker_url)

    found = await reader.conversation("conv-1", escalated_at=at(22), trigger=TRIGGER)

    assert [turn.text for turn in found.turns if turn.trigger] == ["I'm pregnant, can I have it?"]
    after = [turn.text or turn.kind for turn in found.turns if turn.after_escalation]
    assert after == ["<img src=x onerror=alert(1)>", "paused", "Hello, this is Sam from the clinic.", "thank you",
                     "resumed"]


async def test_the_trigger_is_the_message_before_the_escalation_even_if_repeated_later(tracker_url, reader):
    tracker.append(tracker_url, "conv-1", [
        tracker.user("I have chest pain", T + 10), tracker.bot("Call 999 now.", T + 11),
        tracker.user("I have chest pain", T + 300),
    ])
    trigger = {"message": "I have chest pain", "at": at(11).isoformat()}

    found = await reader.conversation("conv-1", escalated_at=at(12), trigger=trigger)

    assert [turn.at for turn in found.turns if turn.trigger] == [at(10)]


async def test_earlier_triggers_of_the_episode_are_marked_too(tracker_url, reader):
    tracker.append(tracker_url, "conv-1", [
        tracker.user("my arm is numb", T + 10), tracker.user("now I feel faint", T + 60),
    ])
    trigger = {"message": "now I feel faint", "at": at(61).isoformat(),
               "history": [{"message": "my arm is numb", "at": at(11).isoformat()}]}

    found = await reader.conversation("conv-1", escalated_at=at(12), trigger=trigger)

    assert [turn.text for turn in found.turns if turn.trigger] == ["my arm is numb", "now I feel faint"]


async def test_a_long_conversation_shows_its_last_turns_and_says_how_many_are_left_out(tracker_url, reader):
    tracker.append(tracker_url, "conv-1", [tracker.user(f"message {n}", T + n) for n in range(12)])

    found = await reader.conversation("conv-1", limit=5)

    assert [turn.text for turn in found.turns] == [f"message {n}" for n in range(7, 12)]
    assert found.omitted == 7


async def test_since_reads_only_newer_events_for_the_live_view(tracker_url, reader):
    conversation(tracker_url)
    first = await reader.conversation("conv-1")
    tracker.append(tracker_url, "conv-1", [tracker.user("are you still there?", T + 500)])

    newer = await reader.conversation("conv-1", since_event_id=first.last_event_id, escalated_at=at(22))

    assert [turn.text for turn in newer.turns] == ["are you still there?"]
    assert newer.turns[0].after_escalation and newer.last_event_id > first.last_event_id
    unchanged = await reader.conversation("conv-1", since_event_id=newer.last_event_id)
    assert unchanged.turns == [] and unchanged.last_event_id == newer.last_event_id


async def test_patient_activity_gives_times_and_ids_without_text(tracker_url, reader):
    conversation(tracker_url)
    tracker.append(tracker_url, "conv-2", [tracker.user("hello", T + 5)])
    start = await reader.last_event_id()
    tracker.append(tracker_url, "conv-2", [tracker.bot("Hi", T + 6), tracker.user("more", T + 7)])

    latest = await reader.latest_patient_messages(["conv-1", "conv-2", "conv-none"])
    after = await reader.patient_messages_after(start)

    assert {sender: activity.at for sender, activity in latest.items()} == {"conv-1": at(130), "conv-2": at(7)}
    assert [(activity.sender_id, activity.at) for activity in after] == [("conv-2", at(7))]
    assert await reader.last_event_id() > start


async def test_a_tracker_store_that_does_not_exist_yet_is_not_created(tmp_path):
    missing = tmp_path / "later" / "tracker.db"
    reader = TrackerReader(f"sqlite:///{missing}")
    try:
        found = await reader.conversation("conv-1")
        assert not found.available and found.turns == []
        assert await reader.latest_patient_messages(["conv-1"]) == {}
        assert await reader.last_event_id() == 0
    finally:
        await reader.close()
    assert not missing.exists()


async def test_a_database_without_an_events_table_reads_as_empty(tmp_path):
    path = tmp_path / "tracker.db"
    path.write_bytes(b"")
    reader = TrackerReader(f"sqlite:///{path}")
    try:
        assert not (await reader.conversation("conv-1")).available
        assert await reader.patient_messages_after(0) == []
    finally:
        await reader.close()


async def test_an_unreachable_tracker_store_is_reported_not_raised_raw():
    reader = TrackerReader(f"postgresql://rasa:secret@127.0.0.1:{free_port()}/rasa")
    try:
        with pytest.raises(TrackerUnavailable):
            await reader.conversation("conv-1")
    finally:
        await reader.close()


async def test_broken_event_rows_are_skipped_not_fatal(tracker_url, reader):
    import sqlalchemy as sa

    engine = sa.create_engine(tracker_url)
    with engine.begin() as connection:
        connection.execute(tracker.EVENTS.insert().values(sender_id="conv-1", type_name="user", timestamp=None,
                                                         data="not json"))
        connection.execute(tracker.EVENTS.insert().values(sender_id="conv-1", type_name="bot", timestamp=T,
                                                         data='{"event": "bot", "text": null}'))
    engine.dispose()
    tracker.append(tracker_url, "conv-1", [tracker.user("still readable", T + 1)])

    found = await reader.conversation("conv-1")

    assert [(turn.kind, turn.text) for turn in found.turns] == [("patient", None), ("patient", "still readable")]


def test_the_reader_defaults_to_the_tracker_store_rasa_uses(tmp_path):
    sqlite = TrackerReader.from_settings(Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/e.db"))
    postgres = TrackerReader.from_settings(Settings(var_dir=tmp_path, database_url="postgresql://u:p@db/clinic"))
    explicit = TrackerReader.from_settings(Settings(tracker_store_url=f"sqlite:///{tmp_path}/t.db"))

    assert sqlite.url == f"sqlite+aiosqlite:///{tmp_path}/tracker.db"
    assert postgres.url == "postgresql+asyncpg://u:p@db/clinic"
    assert explicit.url.endswith("/t.db")
