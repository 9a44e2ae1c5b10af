"""What every patient-facing channel does before and after Rasa sees a message.

* :func:`clean_text` makes any input safe to process: binary and control
  characters removed, length capped, empty input recognised, and ``/intent``
  payloads accepted only from a short allow-list (the payloads our own buttons
  send), so a patient cannot force an intent or set a slot by typing one.
* :func:`guard` wraps Rasa's ``on_new_message`` so that a patient never gets
  silence: if processing fails or produces no reply (for instance because the
  action server is down), a true fallback message with the clinic's phone
  number is sent instead, and the failure is logged without the patient's text.
  The one silence that is right: a conversation staff have taken over (Rasa's
  ``ConversationPaused``), where Rasa logs the message and a person answers it;
  even then a red flag (the safety screen's ``safety.reason`` is ``emergency``)
  gets the urgent guidance at once, as it would from the assistant.
* A message in another language (:mod:`bot.safety.languages`) gets, in that language
  where there is a catalogue, "this assistant answers in English only" with the clinic's
  phone and the emergency number; a red flag in it gets the urgent guidance in that
  language first and then goes on to Rasa, so the safety screen and the escalation see it.
* Rasa's handling of a message runs in its own task, shielded from the request: a
  REST client that disconnects mid-turn (Sanic cancels its handler) never cancels the
  processing, so the patient's message, and the escalation it triggers, are kept.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage

from bot.clinic import Clinic
from bot.privacy import mark_sensitive
from bot.safety.languages import LanguageNet, default_net, warm_up
from bot.safety.screen import message_language

logger = logging.getLogger(__name__)

ALLOWED_PAYLOADS = re.compile(
    r"^/(greet|affirm|deny|stop|correct_details|request_human|book_appointment)$"
)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
ZERO_WIDTH = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


@dataclass(frozen=True)
class CleanText:
    """A patient message made safe to process."""

    text: str
    empty: bool = False
    truncated: bool = False
    payload_blocked: bool = False


def clean_text(raw: Any, max_chars: int) -> CleanText:
    """Normalise untrusted message text.

    Args:
        raw: whatever arrived in the message field (may be bytes, a number, None).
        max_chars: longest text passed on; longer messages are cut at a word boundary.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        raw = "" if raw is None else str(raw)
    text = unicodedata.normalize("NFC", raw)
    text = ZERO_WIDTH.sub("", CONTROL.sub(" ", text)).replace("\ufffd", " ")
    text = " ".join(text.split())
    if not text:
        return CleanText(text="", empty=True)
    truncated = len(text) > max_chars
    if truncated:
        cut = text[:max_chars]
        text = cut.rsplit(" ", 1)[0] if " " in cut[max_chars // 2:] else cut
    payload_blocked = False
    if text.startswith("/") and not ALLOWED_PAYLOADS.match(text):
        # Not one of our buttons: treat it as words, never as an intent payload.
        text = re.sub(r"^[/\s]+", "", text) or "slash"
        payload_blocked = True
    return CleanText(text=text, truncated=truncated, payload_blocked=payload_blocked)


class CountingOutput(OutputChannel):
    """Wraps an output channel and counts the replies sent through it."""

    def __init__(self, inner: OutputChannel) -> None:
        self.inner = inner
        self.sent = 0

    def name(self) -> Text:  # type: ignore[override]
        """The wrapped channel's name, so channel-specific responses still apply."""
        return self.inner.name()

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        self.sent += 1
        await self.inner.send_response(recipient_id, message)


@dataclass
class Turn:
    """What happened while Rasa handled one patient message."""

    action_failed: bool = False


_current_turn: ContextVar[Optional[Turn]] = ContextVar("current_turn", default=None)
ACTION_FAILURE = "Encountered an exception while running action"


class ActionFailureWatch(logging.Filter):
    """Notices Rasa's log record of a failed custom action (e.g. action server down).

    Rasa logs the failure and carries on with the next prediction, so a patient
    could get a follow-up question without the answer it follows. The guard uses
    this to add a true message with the clinic's phone number to that turn.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg and str(record.msg).startswith(ACTION_FAILURE):
            turn = _current_turn.get()
            if turn is not None:
                turn.action_failed = True
        return True


_watch = ActionFailureWatch()


def _install_watch() -> None:
    processor_logger = logging.getLogger("rasa.core.processor")
    if _watch not in processor_logger.filters:
        processor_logger.addFilter(_watch)


def empty_reply() -> str:
    """What the assistant says to an empty message."""
    return "I didn't receive any text. What would you like to know about dry needling?"


def language_reply(net: LanguageNet, clinic: Clinic, language: str, key: str) -> str:
    """Reply ``key`` (``other_language``, ``emergency``, ``emergency_third_party``) in ``language``, else in English."""
    values = {"clinic_name": clinic.name, "clinic_phone": clinic.phone, "emergency_number": clinic.emergency_number}
    return net.reply(language, key, values) or net.reply("en", key, values) or ""


def other_language_reply(clinic: Clinic, language: str = "en") -> str:
    """What the assistant says to a message in another language (in that language where it can)."""
    return language_reply(default_net(), clinic, language, "other_language")


def failure_reply(clinic: Clinic) -> str:
    """What the assistant says when it could not process a message."""
    return (
        "Sorry, I'm having a technical problem and can't answer right now. "
        f"Please try again in a few minutes, or call {clinic.name} on {clinic.phone}. "
        f"If you feel unwell or it's an emergency, call {clinic.emergency_number}."
    )


def rate_limited_reply(clinic: Clinic) -> str:
    """What the assistant says to a message over the rate limit (:mod:`bot.channels.limits`)."""
    return (
        "You're sending messages faster than I can answer, so I didn't read that one. "
        "Please wait a minute and send it again. "
        f"If you need help now, call {clinic.name} on {clinic.phone}. "
        f"If you feel unwell or it's an emergency, call {clinic.emergency_number}."
    )


def session_refused_reply() -> str:
    """What a browser hears when it posts into a conversation that is not its own."""
    return (
        "I couldn't match that message to this chat, so I didn't read it. "
        "Please reload the page and send it again."
    )


OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
#: ``held(sender_id)``: the latest message's parse data while staff hold the conversation, else ``None``.
HeldBy = Callable[[str], Awaitable[Optional[Dict[str, Any]]]]
#: ``paused(sender_id)``: only whether staff hold the conversation (channels with no urgent guidance of their own).
IsPaused = Callable[[str], Awaitable[bool]]


def _held_from(paused: IsPaused) -> HeldBy:
    async def held(sender_id: str) -> Optional[Dict[str, Any]]:
        return {} if await paused(sender_id) else None

    return held


async def _held_by_staff(held: Optional[HeldBy], sender_id: str) -> Optional[Dict[str, Any]]:
    """The latest parse data if staff hold the conversation; when that cannot be told, ``None`` (the patient hears back)."""
    if held is None:
        return None
    try:
        return await held(sender_id)
    except Exception:  # noqa: BLE001 - unknown means the fallback is sent: never silent by mistake
        logger.exception("could not tell whether sender %s is held by staff", short_id(sender_id))
        return None


def is_red_flag(parse_data: Dict[str, Any]) -> bool:
    """Whether the safety screen routed the message as an emergency (``safety.reason``)."""
    safety = parse_data.get("safety")
    return isinstance(safety, dict) and safety.get("reason") == "emergency"


async def _process(on_new_message: OnNewMessage, message: UserMessage) -> None:
    """Rasa's handling of one message; a failure is logged here (the guard answers the patient)."""
    try:
        await on_new_message(message)
    except Exception:  # noqa: BLE001 - any failure must still answer the patient
        logger.exception(
            "processing failed for sender %s on channel %s", short_id(message.sender_id), message.input_channel
        )


def guard(
    on_new_message: OnNewMessage, clinic: Clinic, max_chars: int, held: Optional[HeldBy] = None,
    urgent_guidance: str = "", paused: Optional[IsPaused] = None,
) -> OnNewMessage:
    """Wrap Rasa's message handler with input cleaning and a never-silent reply.

    ``held(sender_id)`` tells whether staff hold the conversation: then a turn with no
    automated reply is expected and no fallback is sent, except ``urgent_guidance`` for a
    red flag. ``paused(sender_id)`` is the same without the parse data (no urgent guidance).
    """
    if held is None and paused is not None:
        held = _held_from(paused)

    _install_watch()
    net = default_net()
    warm_up()  # lingua's models load now, not on a patient's first message

    async def handle(message: UserMessage) -> None:
        cleaned = clean_text(message.text, max_chars)
        mark_sensitive(message.text, cleaned.text)  # kept out of every log line of this turn
        out = CountingOutput(message.output_channel)
        if cleaned.empty:
            await out.send_response(message.sender_id, {"text": empty_reply()})
            return
        language = message_language(cleaned.text)
        if language != "en":
            reports = [f for f in net.findings(cleaned.text, language) if f.is_report]
            if reports:
                # Urgent guidance in the patient's language first (sent past the counter: it is
                # not Rasa's reply), then on to Rasa, so the screen and the escalation see it.
                key = "emergency_third_party" if any(f.third_party for f in reports) else "emergency"
                classes = ",".join(sorted({f.red_flag_class for f in reports}))
                logger.warning("red flag (%s) in a message in '%s' from sender %s: urgent guidance sent in it",
                               classes, language, short_id(message.sender_id))
                await message.output_channel.send_response(
                    message.sender_id, {"text": language_reply(net, clinic, language, key)}
                )
            elif await _held_by_staff(held, message.sender_id) is None:
                await out.send_response(message.sender_id, {"text": other_language_reply(clinic, language)})
                return
        if cleaned.payload_blocked:
            logger.info("blocked an intent payload typed by sender %s", short_id(message.sender_id))
        message.text = cleaned.text
        message.output_channel = out
        turn = Turn()
        token = _current_turn.set(turn)
        try:
            # Its own task (it copies the context, so the watch still sees this turn), shielded:
            # a client that disconnects cancels this handler, never the processing, so the
            # patient's message and whatever it triggered are kept in the tracker.
            processing = asyncio.ensure_future(_process(on_new_message, message))
        finally:
            _current_turn.reset(token)
        try:
            await asyncio.shield(processing)
        except asyncio.CancelledError:
            logger.warning(
                "the client of sender %s went away mid-turn; the message is still processed and kept",
                short_id(message.sender_id),
            )
            raise
        latest = None if out.sent or turn.action_failed else await _held_by_staff(held, message.sender_id)
        if latest is not None:
            logger.info("sender %s is talking to staff: no automated reply", short_id(message.sender_id))
            if urgent_guidance and is_red_flag(latest):
                logger.warning("red flag from sender %s while staff hold the chat: sent the urgent guidance",
                               short_id(message.sender_id))
                await out.send_response(message.sender_id, {"text": urgent_guidance})
            return
        if out.sent == 0 or turn.action_failed:
            logger.error(
                "%s for sender %s on channel %s; sent the fallback message",
                "an action failed" if turn.action_failed else "no reply produced",
                short_id(message.sender_id),
                message.input_channel,
            )
            try:
                await out.send_response(message.sender_id, {"text": failure_reply(clinic)})
            except Exception:  # noqa: BLE001 - the transport itself failed; nothing left to try
                logger.exception("could not send the fallback message")

    return handle


def short_id(sender_id: Optional[str]) -> str:
    """A sender id shortened for logs (ids may be phone numbers on some channels)."""
    if not sender_id:
        return "?"
    return sender_id[:4] + "…" if len(sender_id) > 8 else sender_id
