"""The whole conversation of an escalated patient, read from Rasa's SQL tracker store.

Rasa's ``SQLTrackerStore`` keeps one row per event in the table ``events``
(``id``, ``sender_id``, ``type_name``, ``timestamp`` (epoch seconds), ``intent_name``,
``action_name``, ``data``: the event as JSON text). This module reads that table with
SQLAlchemy alone (the web app has no Rasa) and never writes to it.

A conversation is shown as turns:

- ``patient``: a user event (text, intent and confidence, the safety screen's verdict
  from ``parse_data["safety"]``, and, for a text the SMS channel kept without an
  automated answer, why: ``metadata["sms"]["unanswered"]`` and its staff-facing ``note``,
  see :mod:`bot.assistant.messaging.unanswered`);
- ``assistant``: a bot event (text, button titles);
  a patient message that is a button's payload (``/affirm``) is shown as the title of the
  button the assistant offered (``Yes, I agree``), the payload kept behind the details;
- ``staff``: a bot event whose metadata carries ``{"staff": {"name": ...}}`` (a staff
  member writing in the chat during a takeover);
- ``paused`` / ``resumed`` (Rasa's ``ConversationPaused`` / ``ConversationResumed``),
  ``session_started`` and ``restarted`` markers.

Turns after the escalation are marked (``after_escalation``), and the message that
triggered it (and earlier triggers of the same episode) is marked ``trigger``: the
latest patient message at or before the trigger's time whose text is the trigger's
message. Long conversations are capped at the last :data:`DEFAULT_LIMIT` turns
(``omitted`` says how many earlier ones are not shown). ``since_event_id`` reads only
newer turns, for the live view.

The contact details the patient gave with consent in the contact form are read from the
same table's ``slot`` events (:meth:`TrackerReader.contact_answers`): the form's answers
count once the consent slot is set to yes.

Everything here is patient data: never log it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.core.settings import Settings, async_db_url

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 500
#: Event types shown as turns or markers (everything else, e.g. actions and slots, is skipped).
SHOWN = {
    "user": "patient",
    "bot": "assistant",
    "pause": "paused",
    "resume": "resumed",
    "session_started": "session_started",
    "restart": "restarted",
}
#: Keys of the safety verdict worth showing staff (the model's full ranking is left out).
SAFETY_KEYS = (
    "reason", "matched_terms", "personal", "third_party", "rerouted", "demoted", "evidence", "signals",
    "rationale", "unrelated_health_question", "other_subject",
)
#: A trigger's time is taken when the action runs, just after the message: allow for clocks.
TRIGGER_SLACK = timedelta(seconds=5)

EVENTS = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("intent_name", sa.String),
    sa.column("action_name", sa.String),
    sa.column("data", sa.Text),
)


class TrackerUnavailable(Exception):
    """The tracker store could not be read (unreachable, or not a Rasa tracker store)."""


@dataclass(frozen=True)
class Turn:
    """One shown event of the conversation."""

    event_id: int
    kind: str
    at: Optional[datetime]
    text: Optional[str] = None
    intent: Optional[str] = None
    confidence: Optional[float] = None
    #: The safety screen's verdict on a patient message (``SAFETY_KEYS`` only).
    safety: Optional[dict[str, Any]] = None
    #: Who from the clinic wrote a ``staff`` turn.
    staff_name: Optional[str] = None
    buttons: tuple[str, ...] = ()
    after_escalation: bool = False
    trigger: bool = False
    #: Why this patient text got no automated answer (``opted_out``, ``rate_limited``); ``None``: it was answered.
    unanswered: Optional[str] = None
    #: The staff-facing words for ``unanswered``, as the channel recorded them.
    unanswered_note: Optional[str] = None
    #: An assistant turn's buttons as (title, payload) pairs.
    choices: tuple[tuple[str, str], ...] = ()
    #: A patient turn that was a payload, not typed text: the payload (``text`` is then the button's title, or words).
    payload: Optional[str] = None
    #: The payload is a button the assistant offered, which the patient tapped.
    tapped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "at": self.at.isoformat() if self.at else None,
            "text": self.text,
            "intent": self.intent,
            "confidence": self.confidence,
            "safety": self.safety,
            "staff_name": self.staff_name,
            "buttons": list(self.buttons),
            "after_escalation": self.after_escalation,
            "trigger": self.trigger,
            "unanswered": self.unanswered,
            "unanswered_note": self.unanswered_note,
            "payload": self.payload,
            "tapped": self.tapped,
        }


@dataclass(frozen=True)
class ContactAnswer:
    """One name, route and detail the patient gave in the contact form and agreed to be contacted by."""

    name: Optional[str]
    method: Optional[str]
    detail: Optional[str]


#: The contact form's slots (domain.yml's ``contact_form``).
CONTACT_SLOTS = ("contact_name", "contact_method", "contact_detail")
CONSENT_SLOT = "contact_consent"


@dataclass(frozen=True)
class Conversation:
    """The shown part of one conversation."""

    turns: list[Turn] = field(default_factory=list)
    #: Earlier turns not shown because of the cap.
    omitted: int = 0
    #: The newest event id read (pass it back as ``since_event_id``); 0 when nothing was read.
    last_event_id: int = 0
    #: ``False`` when the tracker store holds nothing for anyone yet (no database or no table).
    available: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "turns": [turn.to_dict() for turn in self.turns],
            "omitted": self.omitted,
            "last_event_id": self.last_event_id,
            "available": self.available,
        }


@dataclass(frozen=True)
class PatientActivity:
    """The latest patient message of a conversation (no text)."""

    sender_id: str
    event_id: int
    at: Optional[datetime]


def _when(timestamp: Any) -> Optional[datetime]:
    if not isinstance(timestamp, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(float(timestamp), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _load(data: Optional[str]) -> dict[str, Any]:
    try:
        loaded = json.loads(data or "{}")
    except (TypeError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _safety(parse_data: dict[str, Any]) -> Optional[dict[str, Any]]:
    verdict = parse_data.get("safety")
    if not isinstance(verdict, dict):
        return None
    shown = {key: verdict[key] for key in SAFETY_KEYS if key in verdict}
    model = verdict.get("model_intent")
    if isinstance(model, dict):
        shown["model_intent"] = {"name": model.get("name"), "confidence": model.get("confidence")}
    return shown


def _unanswered(event: dict[str, Any]) -> tuple[Optional[str], Optional[str]]:
    """Why the channel gave a patient text no automated answer, and its note (``None``s: it was answered)."""
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    sms = metadata.get("sms") if isinstance(metadata.get("sms"), dict) else {}
    reason = _text(sms.get("unanswered"))
    if reason is None:
        return None, None
    return reason, _text(sms.get("note")) or "This text got no automated answer."


def turn_of(event_id: int, type_name: str, timestamp: Any, data: Optional[str]) -> Optional[Turn]:
    """The turn an ``events`` row shows, or ``None`` for events that are not shown."""
    kind = SHOWN.get(type_name)
    if kind is None:
        return None
    event = _load(data)
    at = _when(timestamp if timestamp is not None else event.get("timestamp"))
    if kind == "patient":
        parse_data = event.get("parse_data") if isinstance(event.get("parse_data"), dict) else {}
        intent = parse_data.get("intent") if isinstance(parse_data.get("intent"), dict) else {}
        confidence = intent.get("confidence")
        reason, note = _unanswered(event)
        return Turn(
            event_id, kind, at, text=_text(event.get("text")), intent=_text(intent.get("name")),
            confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
            safety=_safety(parse_data), unanswered=reason, unanswered_note=note,
        )
    if kind == "assistant":
        metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
        staff = metadata.get("staff") if isinstance(metadata.get("staff"), dict) else None
        extra = event.get("data") if isinstance(event.get("data"), dict) else {}
        choices = tuple(
            (str(button.get("title")), str(button.get("payload") or ""))
            for button in extra.get("buttons") or []
            if isinstance(button, dict) and button.get("title")
        )
        buttons = tuple(title for title, _ in choices)
        if staff is not None:
            return Turn(event_id, "staff", at, text=_text(event.get("text")),
                        staff_name=_text(staff.get("name")) or "Clinic staff")
        if not event.get("text") and not buttons:
            return None
        return Turn(event_id, kind, at, text=_text(event.get("text")), buttons=buttons, choices=choices)
    return Turn(event_id, kind, at)


def _triggers(trigger: Optional[dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(trigger, dict):
        return []
    history = [item for item in trigger.get("history") or [] if isinstance(item, dict)]
    return history + [trigger]


def _trigger_time(trigger: dict[str, Any]) -> Optional[datetime]:
    value = trigger.get("at")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def mark(turns: list[Turn], escalated_at: Optional[datetime], trigger: Optional[dict[str, Any]]) -> list[Turn]:
    """Mark the turns after ``escalated_at`` and the patient messages that triggered the escalation."""
    triggering: set[int] = set()
    for each in _triggers(trigger):
        moment = _trigger_time(each)
        message = _text(each.get("message"))
        candidates = [
            turn for turn in turns
            if turn.kind == "patient"
            and (moment is None or turn.at is None or turn.at <= moment + TRIGGER_SLACK)
            and (message is None or turn.text == message)
        ]
        if candidates and (moment is not None or message is not None):
            triggering.add(candidates[-1].event_id)
    marked = []
    for turn in turns:
        after = bool(escalated_at and turn.at and turn.at > escalated_at)
        if after != turn.after_escalation or (turn.event_id in triggering) != turn.trigger:
            turn = Turn(**{**turn.__dict__, "after_escalation": after, "trigger": turn.event_id in triggering})
        marked.append(turn)
    return marked


def offered_titles(turns: Iterable[Turn]) -> dict[str, str]:
    """Payload -> title of every button the assistant offered in ``turns`` (the latest offer wins)."""
    titles: dict[str, str] = {}
    for turn in turns:
        for title, payload in turn.choices:
            if payload:
                titles[payload] = title
    return titles


#: An intent payload (``/affirm``, ``/inform{"x": 1}``): sent by a button or the chat, never typed as such.
PAYLOAD = re.compile(r"^/[A-Za-z_][\w-]*(\{.*\})?$", re.S)
#: Payloads the website chat sends on its own (bot/dashboard/web/static/widget: ``data-initial-payload``).
CLIENT_PAYLOADS = {"/greet": "Opened the chat"}
#: A payload matching no button offered (an older button, a client's own): said in words, kept behind the details.
UNKNOWN_PAYLOAD = "Chose an option (not typed)"


def readable(turns: list[Turn], offered: Optional[dict[str, str]] = None) -> list[Turn]:
    """Patient turns that were button taps, shown as the button's title (``offered``: buttons offered before)."""
    titles = dict(offered or {})
    shown = []
    for turn in turns:
        titles.update({payload: title for title, payload in turn.choices if payload})
        if turn.kind == "patient" and turn.text and PAYLOAD.match(turn.text):
            words = titles.get(turn.text) or CLIENT_PAYLOADS.get(turn.text) or UNKNOWN_PAYLOAD
            turn = Turn(**{**turn.__dict__, "text": words, "payload": turn.text, "tapped": turn.text in titles})
        shown.append(turn)
    return shown


def contact_answers_of(slots: Iterable[tuple[Optional[str], Any]]) -> list[ContactAnswer]:
    """The contact form's answers that the patient consented to, from ``(slot name, value)`` in order."""
    current: dict[str, Optional[str]] = {}
    found: list[ContactAnswer] = []
    for name, value in slots:
        if name in CONTACT_SLOTS:
            current[name] = value.strip() if isinstance(value, str) and value.strip() else None
        elif name == CONSENT_SLOT and value is True:
            answer = ContactAnswer(current.get("contact_name"), current.get("contact_method"),
                                   current.get("contact_detail"))
            if (answer.name or answer.detail) and answer not in found:
                found.append(answer)
    return found


class TrackerReader:
    """Reads conversations from the tracker store at ``url`` (Rasa's SQL tracker store)."""

    def __init__(self, url: str) -> None:
        self.url = async_db_url(url)
        parsed = make_url(self.url)
        self._sqlite_file: Optional[Path] = None
        kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True, "hide_parameters": True}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                self._sqlite_file = Path(parsed.database)
            kwargs["connect_args"] = {"timeout": 15}
        else:
            kwargs["connect_args"] = {"timeout": 5, "command_timeout": 10}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings) -> "TrackerReader":
        """The reader of the tracker store the Rasa server uses (the same default as :mod:`bot.core.settings`)."""
        url = settings.tracker_store_url
        if not url:
            database = settings.database_url
            url = database if database.startswith(("postgres://", "postgresql")) else (
                f"sqlite:///{settings.var_dir / 'tracker.db'}"
            )
        return cls(url)

    async def close(self) -> None:
        await self.engine.dispose()

    def _exists(self) -> bool:
        # Never let a read create an empty SQLite file where Rasa will create its own.
        return self._sqlite_file is None or self._sqlite_file.exists()

    async def _rows(self, query: Any) -> Sequence[Any]:
        try:
            async with self.engine.connect() as connection:
                return (await connection.execute(query)).all()
        except (SQLAlchemyError, OSError, asyncio.TimeoutError) as exc:
            if isinstance(exc, SQLAlchemyError) and _missing_table(exc):
                raise _NoTable() from None
            logger.warning("could not read the tracker store (%s)", type(exc).__name__)
            raise TrackerUnavailable("the conversation store could not be read") from None

    async def conversation(
        self,
        sender_id: str,
        *,
        escalated_at: Optional[datetime] = None,
        trigger: Optional[dict[str, Any]] = None,
        since_event_id: Optional[int] = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Conversation:
        """The conversation's shown turns (the last ``limit``), or only those after ``since_event_id``."""
        if not self._exists():
            return Conversation(available=False)
        where = [EVENTS.c.sender_id == sender_id, EVENTS.c.type_name.in_(list(SHOWN))]
        if since_event_id is not None:
            where.append(EVENTS.c.id > since_event_id)
        query = (
            sa.select(EVENTS.c.id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
            .where(*where).order_by(EVENTS.c.id.desc()).limit(limit + 1)
        )
        try:
            rows = list(reversed(await self._rows(query)))
            omitted = 0
            if len(rows) > limit:
                rows = rows[1:]
                if since_event_id is None:
                    count = sa.select(sa.func.count()).select_from(EVENTS).where(*where, EVENTS.c.id < rows[0].id)
                    omitted = (await self._rows(count))[0][0]
                else:
                    omitted = 1  # at least one; the live view reloads the page instead
        except _NoTable:
            return Conversation(available=False)
        turns = [turn for row in rows if (turn := turn_of(row.id, row.type_name, row.timestamp, row.data))]
        last = rows[-1].id if rows else (since_event_id or 0)
        offered: dict[str, str] = {}
        if since_event_id is not None and any(turn.kind == "patient" and PAYLOAD.match(turn.text or "")
                                              for turn in turns):
            offered = await self._offered_before(sender_id, since_event_id)
        return Conversation(readable(mark(turns, escalated_at, trigger), offered), omitted, last)

    async def _offered_before(self, sender_id: str, event_id: int, look_back: int = 20) -> dict[str, str]:
        """The buttons of the assistant's last messages up to ``event_id`` (for a tap read by the live view)."""
        query = (
            sa.select(EVENTS.c.id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
            .where(EVENTS.c.sender_id == sender_id, EVENTS.c.type_name == "bot", EVENTS.c.id <= event_id)
            .order_by(EVENTS.c.id.desc()).limit(look_back)
        )
        try:
            rows = list(reversed(await self._rows(query)))
        except _NoTable:
            return {}
        return offered_titles(turn for row in rows if (turn := turn_of(row.id, row.type_name, row.timestamp, row.data)))

    async def contact_answers(self, sender_id: str) -> list[ContactAnswer]:
        """Every name and phone number or email the patient gave in the contact form and consented to, oldest first."""
        if not self._exists():
            return []
        query = (
            sa.select(EVENTS.c.data)
            .where(EVENTS.c.sender_id == sender_id, EVENTS.c.type_name == "slot")
            .order_by(EVENTS.c.id)
        )
        try:
            rows = await self._rows(query)
        except _NoTable:
            return []
        slots = []
        for row in rows:
            event = _load(row.data)
            name = event.get("name")
            if name in CONTACT_SLOTS or name == CONSENT_SLOT:
                slots.append((name, event.get("value")))
        return contact_answers_of(slots)

    async def latest_patient_messages(self, sender_ids: Iterable[str]) -> dict[str, PatientActivity]:
        """Each conversation's newest patient message (id and time, no text)."""
        senders = sorted(set(sender_ids))
        if not senders or not self._exists():
            return {}
        query = (
            sa.select(EVENTS.c.sender_id, sa.func.max(EVENTS.c.id), sa.func.max(EVENTS.c.timestamp))
            .where(EVENTS.c.sender_id.in_(senders), EVENTS.c.type_name == "user")
            .group_by(EVENTS.c.sender_id)
        )
        try:
            rows = await self._rows(query)
        except _NoTable:
            return {}
        return {sender: PatientActivity(sender, event_id, _when(ts)) for sender, event_id, ts in rows}

    async def patient_messages_after(self, event_id: int, limit: int = 200) -> list[PatientActivity]:
        """Patient messages newer than ``event_id`` in any conversation, oldest first (for live updates)."""
        if not self._exists():
            return []
        query = (
            sa.select(EVENTS.c.sender_id, EVENTS.c.id, EVENTS.c.timestamp)
            .where(EVENTS.c.id > event_id, EVENTS.c.type_name == "user")
            .order_by(EVENTS.c.id).limit(limit)
        )
        try:
            rows = await self._rows(query)
        except _NoTable:
            return []
        return [PatientActivity(sender, row_id, _when(ts)) for sender, row_id, ts in rows]

    async def last_event_id(self) -> int:
        """The newest event id in the store (0 if none): where live polling starts."""
        if not self._exists():
            return 0
        try:
            rows = await self._rows(sa.select(sa.func.max(EVENTS.c.id)))
        except _NoTable:
            return 0
        return rows[0][0] or 0


class _NoTable(Exception):
    """The tracker database has no ``events`` table yet (Rasa creates it at its first start)."""


def _missing_table(exc: SQLAlchemyError) -> bool:
    message = str(getattr(exc, "orig", exc)).lower()
    return "no such table" in message or ("relation" in message and "does not exist" in message) or (
        "undefinedtable" in type(getattr(exc, "orig", exc)).__name__.lower()
    )
