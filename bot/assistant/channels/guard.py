"""What every patient-facing channel does before and after Rasa sees a message.

* every message is first made safe to process (:mod:`bot.assistant.channels.text_input`).
* :func:`guard` wraps Rasa's ``on_new_message`` so that a patient never gets
  silence: if processing fails or produces no reply (for instance because the
  action server is down), a true fallback message with the clinic's phone
  number is sent instead (:mod:`bot.assistant.channels.replies`), and the failure is logged
  without the patient's text. A custom action that failed mid-turn is noticed from
  Rasa's log record (:mod:`bot.assistant.channels.action_failures`).
  The one silence that is right: a conversation staff have taken over (Rasa's
  ``ConversationPaused``), where Rasa logs the message and a person answers it;
  even then a red flag (the safety screen's ``safety.reason`` is ``emergency``)
  gets the urgent guidance at once, as it would from the assistant.
* A message in another language (:mod:`bot.assistant.channels.other_language`) gets, in that language
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
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage

from bot.assistant.channels.action_failures import Turn, install_watch, watching
from bot.assistant.channels.other_language import other_language
from bot.assistant.channels.replies import empty_reply, failure_reply, language_reply, other_language_reply
from bot.assistant.channels.text_input import clean_text
from bot.core.clinic import Clinic
from bot.core.privacy import mark_sensitive, short_id
from bot.core.safety.languages import default_net, warm_up
from bot.core.safety.verdict import SafetyVerdict

logger = logging.getLogger(__name__)

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
    return SafetyVerdict.from_parse_data(parse_data).emergency


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

    install_watch()
    net = default_net()
    warm_up()  # lingua's models load now, not on a patient's first message

    async def handle(message: UserMessage) -> None:
        cleaned = clean_text(message.text, max_chars)
        mark_sensitive(message.text, cleaned.text)  # kept out of every log line of this turn
        out = CountingOutput(message.output_channel)
        if cleaned.empty:
            await out.send_response(message.sender_id, {"text": empty_reply()})
            return
        foreign = other_language(net, cleaned.text)
        if foreign is not None:
            if foreign.reports_red_flag:
                # Urgent guidance in the patient's language first (sent past the counter: it is
                # not Rasa's reply), then on to Rasa, so the screen and the escalation see it.
                logger.warning("red flag (%s) in a message in '%s' from sender %s: urgent guidance sent in it",
                               ",".join(foreign.red_flag_classes), foreign.language, short_id(message.sender_id))
                await message.output_channel.send_response(
                    message.sender_id, {"text": language_reply(net, clinic, foreign.language, foreign.urgent_reply_key)}
                )
            elif await _held_by_staff(held, message.sender_id) is None:
                await out.send_response(message.sender_id, {"text": other_language_reply(clinic, foreign.language)})
                return
        if cleaned.payload_blocked:
            logger.info("blocked an intent payload typed by sender %s", short_id(message.sender_id))
        message.text = cleaned.text
        message.output_channel = out
        with watching(Turn()) as turn:
            # Its own task (it copies the context, so the watch still sees this turn), shielded:
            # a client that disconnects cancels this handler, never the processing, so the
            # patient's message and whatever it triggered are kept in the tracker.
            processing = asyncio.ensure_future(_process(on_new_message, message))
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
