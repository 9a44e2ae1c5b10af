"""The clinic messaging channel: SMS and WhatsApp through Twilio, in the Rasa server.

Served at ``/webhooks/twilio/`` (the URL prefix keeps the documented address; the
channel's own name, ``clinic_sms``, is not Rasa's built-in ``twilio`` connector,
which accepts unsigned requests, answers 500 to a missing ``Body`` and ignores
STOP). Routes:

* ``POST webhook``: a patient's text, as Twilio posts it (form-encoded);
* ``POST status``: Twilio's delivery status callbacks for the texts we sent;
* ``POST staff/...``: the dashboard's staff replies (:mod:`bot.assistant.channels.sms_staff`).

Every Twilio request must carry a valid ``X-Twilio-Signature`` for the configured
public URL (``TWILIO_WEBHOOK_URL``), checked with the ``twilio`` package's
``RequestValidator``; otherwise 403, logged without the body or the number. A
malformed request gets 400, never a 500.

A patient text then goes, in order: a ``MessageSid`` seen before is acknowledged
and dropped (Twilio retries slow webhooks); STOP/START and their synonyms are
recorded (opt-out, re-subscription) before anything reads the text; a text from a
number that opted out is never answered, but it is kept in the conversation staff see
with why, and screened: a red flag is an urgent case for staff to phone
(:mod:`bot.assistant.messaging.unanswered`); a new number's first reply starts by saying
what the assistant is and that texts are not secure (the assistant's own opening does
that on SMS, else the channel adds it), except that a red flag's urgent guidance comes
first and a one-segment disclosure after it (:mod:`bot.assistant.messaging.economy`);
HELP gets the clinic's name, phone and how to stop; a text from one of the clinic's
on-call contacts (``clinic.yml`` ``on_call``, the same E.164 number the on-call alerts go
to) is staff answering an alert, not a patient: it never reaches the assistant, and is
recorded as their acknowledgement of the urgent cases they were alerted about, with one
short reply (:mod:`bot.assistant.messaging.on_call_replies`); a number over its rate limit gets
one notice a minute and its texts are kept and shown, not answered (a red flag is
answered, and the limit never applies while staff text the patient); a picture with
no text gets "I can only read text here"; a number or the words of a choice
offered in the last turn select it; MORE after a short answer sends the full one
(:mod:`bot.assistant.messaging.more`); the rest goes to Rasa through
:func:`bot.assistant.channels.guard.guard`, like every channel. A curated FAQ answer goes out as
its one-text short version with "Reply MORE for the full answer" (a shorter offer when that
would pass 2 segments). Past the daily cap a red flag's reply still goes out. The replies are queued in
the store (:mod:`bot.assistant.messaging.service`) and sent by the SMS outbox
(:mod:`bot.assistant.messaging.outbox`), which runs in this process: the webhook answers
Twilio with an empty TwiML response at once.

Nothing is lost when the store is down or slow (past ``SMS_STORE_TIMEOUT_SECONDS``):
Twilio does not retry an incoming text, so the text is spooled to disk
(:mod:`bot.core.messaging.inbound_spool`) and the patient is answered at once in the
webhook's TwiML answer (:mod:`bot.assistant.messaging.degraded`): the urgent guidance first for
a red flag, told from the safety screen's verdict on the text alone. The channel
replays the spool into the ordinary path when the store answers again. If the store
fails after the assistant answered, its replies go out in the TwiML answer instead
of the outbox.

Patient numbers never become Rasa sender ids (each address gets a random
``sms-...`` conversation id), log lines or URLs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Awaitable, Callable, Dict, Optional, Text
from urllib.parse import parse_qs

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator

from bot.assistant.channels.caps import MAX_REQUEST_BYTES
from bot.assistant.channels.guard import guard, is_red_flag
from bot.assistant.channels.live_chats import urgent_guidance
from bot.assistant.channels.replies import failure_reply, rate_limited_reply
from bot.assistant.channels.sms_staff import add_staff_routes
from bot.assistant.channels.text_input import clean_text
from bot.assistant.messaging.choices import selected
from bot.assistant.messaging import unanswered
from bot.assistant.messaging.degraded import kept_for_later, red_flag_replies, twiml_messages
from bot.assistant.messaging.economy import fit_offer, urgent_first
from bot.assistant.messaging.keywords import HELP, OPT_IN, OPT_OUT, keyword_of
from bot.assistant.messaging.more import ShortAnswers, asks_for_more
from bot.assistant.messaging.on_call_replies import OnCallReplies, on_call_contact
from bot.assistant.messaging.outbox import SmsSender
from bot.assistant.messaging.replies import render_turn
from bot.assistant.messaging.service import Intake, SmsService
from bot.assistant.messaging.texts import SmsTexts, load_texts
from bot.assistant.messaging.twilio_api import TwilioApi, status_callback_url
from bot.core import process
from bot.core.channel_names import Channel
from bot.core.clinic import Clinic, OnCallContact, load_clinic
from bot.core.escalation.service import EscalationService
from bot.core.messaging.addresses import Address, parse_address
from bot.core.messaging.inbound_spool import InboundSpool, SpooledText
from bot.core.privacy import mark_sensitive, short_id
from bot.core.settings import Settings
from bot.core.store.db import bounded, close_process_engines, process_engine, session_factory
from bot.core.store.models import utcnow

logger = logging.getLogger(__name__)

CHANNEL_NAME = Channel.clinic_sms.value
#: The response that opens every conversation (action_session_start); on SMS it says texts are not secure.
DISCLOSURE = "utter_disclosure"
#: The response the rules run for a problem after treatment; the Rasa server's NLG picks its text by verdict.
ADVERSE_EVENT = "utter_adverse_event"
URL_PREFIX = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
MAX_MEDIA = 10
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
#: What a store that is down or hanging raises through :func:`bot.core.store.db.bounded`.
STORE_ERRORS = (SQLAlchemyError, OSError, asyncio.TimeoutError)
#: How often the Rasa process tries to replay spooled texts.
REPLAY_INTERVAL_SECONDS = 5.0
#: Longest wait for the model's verdict on a text answered without the store.
PARSE_TIMEOUT_SECONDS = 5.0
STATUSES = frozenset(
    {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "read", "undelivered", "failed", "canceled"}
)


class FormParams(dict):
    """A form-encoded body as lists of values per name (``getall`` for ``RequestValidator``)."""

    def getall(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str) -> Optional[str]:
        """The first value of ``name``, or ``None`` when absent."""
        values = self.get(name)
        return values[0] if values else None


def parse_form(body: bytes) -> Optional[FormParams]:
    """A form-encoded body (blank values kept: Twilio signs them); ``None`` if it is not text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return FormParams(parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=200))
    except ValueError:
        return None


def twiml() -> HTTPResponse:
    """An empty TwiML answer: the replies go out through the REST API, not in the webhook's answer."""
    return response.text(EMPTY_TWIML, content_type="text/xml")


def twiml_replies(texts: list[str]) -> HTTPResponse:
    """A TwiML answer that makes Twilio send ``texts`` (used when the outbox cannot take them)."""
    return response.text(twiml_messages(texts), content_type="text/xml")


class NotQueued(Exception):
    """The assistant answered but the store could not queue the replies; ``parts`` are the texts."""

    def __init__(self, parts: list[str]) -> None:
        super().__init__("replies not queued")
        self.parts = parts


def refusal(status: int, reason: str) -> HTTPResponse:
    """A short JSON refusal (no patient data in it)."""
    return response.json({"error": reason}, status=status)


class SmsOutput(OutputChannel):
    """Collects one turn's replies; the channel renders and queues them after the turn."""

    @classmethod
    def name(cls) -> Text:
        """``clinic_sms``: the domain's ``channel: clinic_sms`` responses apply on SMS and WhatsApp."""
        return CHANNEL_NAME

    def __init__(self) -> None:
        self.messages: list[Dict[Text, Any]] = []

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        self.messages.append(dict(message))

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        self.messages.append({"text": text})


class ClinicSmsInput(InputChannel):
    """Twilio SMS and WhatsApp: signed requests only, SMS-native replies, opt-outs honoured."""

    def __init__(self, settings: Settings, clinic: Clinic, texts: SmsTexts) -> None:
        self.settings = settings
        self.clinic = clinic
        self.texts = texts
        self.validator = RequestValidator(settings.twilio_auth_token) if settings.twilio_auth_token else None
        self.service: Optional[SmsService] = None
        self.escalations: Optional[EscalationService] = None
        self.on_call_replies: Optional[OnCallReplies] = None
        self.sender: Optional[SmsSender] = None
        self._http: Optional[aiohttp.ClientSession] = None
        self._stop = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self.spool = InboundSpool(settings.spool_dir)
        self._replay_task: Optional[asyncio.Task] = None
        self._hook: Optional[Blueprint] = None
        self._on_new_message: Optional[Callable[[UserMessage], Awaitable[Any]]] = None
        self._urgent_guidance = urgent_guidance(clinic)
        self.short_answers = ShortAnswers.load(clinic)

    @classmethod
    def name(cls) -> Text:
        """Not Rasa's built-in ``twilio`` connector: the replies' channel name is ``clinic_sms``."""
        return CHANNEL_NAME

    def url_prefix(self) -> Text:
        """Served at ``/webhooks/twilio/``, the address the interfaces document."""
        return URL_PREFIX

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Everything comes from the environment; the channel stays off until it is configured."""
        if credentials:
            logger.warning("credentials.yml: the SMS channel takes no keys; set the TWILIO_* variables instead")
        return cls.from_settings(process.settings())

    @classmethod
    def from_settings(cls, settings: Settings) -> "ClinicSmsInput":
        """Create the channel from the process settings."""
        channel = cls(settings, load_clinic(settings.clinic_config), load_texts())
        if not settings.twilio_configured:
            logger.info("SMS/WhatsApp channel off: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, a sender and TWILIO_WEBHOOK_URL")
        return channel

    @property
    def configured(self) -> bool:
        """Whether the channel is on."""
        return self.settings.twilio_configured

    # ---- lifetime: the store and the sender start with the server --------------------------------

    async def start(self) -> None:
        """Open the store and the HTTP client, and start the outbox sender (once)."""
        if not self.configured or self.service is not None:
            return
        sessions = session_factory(process_engine(self.settings.database_url))
        self.service = SmsService(sessions, self.texts, self.clinic, self.settings.sms_daily_outbound_cap)
        self.escalations = EscalationService.from_settings(self.settings, sessions, self.clinic)
        self.on_call_replies = OnCallReplies(sessions)
        self._http = aiohttp.ClientSession()
        self.sender = SmsSender(
            sessions, TwilioApi(self.settings, self._http), self.settings.twilio_webhook_url,
            self.settings.sms_send_interval_seconds,
        )
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self.sender.run_forever(self._stop))
        self._replay_task = asyncio.get_running_loop().create_task(self._replay_forever())
        logger.info("SMS/WhatsApp channel on; the outbox sender is running")

    async def stop(self) -> None:
        """Stop the sender after its current text, and close the HTTP client and the store."""
        self._stop.set()
        if self._replay_task is not None:
            try:
                await asyncio.wait_for(self._replay_task, timeout=30)
            except asyncio.TimeoutError:
                self._replay_task.cancel()
            self._replay_task = None
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except asyncio.TimeoutError:
                self._task.cancel()
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        await close_process_engines()
        self.service = None
        self.on_call_replies = None
        self.sender = None

    # ---- requests ---------------------------------------------------------------------------------

    def signed(self, request: Request, params: FormParams, public_url: str) -> bool:
        """Whether the request carries Twilio's signature for ``public_url`` (plus its query string)."""
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature or self.validator is None:
            return False
        url = f"{public_url}?{request.query_string}" if request.query_string else public_url
        try:
            return bool(self.validator.validate(url, params, signature))
        except (ValueError, TypeError, UnicodeError):
            return False

    async def _checked_form(self, request: Request, public_url: str) -> FormParams | HTTPResponse:
        if not self.configured or self.service is None:
            return refusal(503, "sms_channel_not_configured")
        body = request.body or b""
        if len(body) > MAX_REQUEST_BYTES:
            return refusal(400, "body_too_large")
        params = parse_form(body)
        if params is None:
            return refusal(400, "not_form_encoded")
        if not self.signed(request, params, public_url):
            logger.warning("refused a request to %s without a valid Twilio signature", request.path)
            return refusal(403, "invalid_signature")
        return params

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The webhook, the status callback, and the sender's lifetime."""
        hook = Blueprint("clinic_sms_webhook", __name__)
        self._hook = hook
        self._on_new_message = on_new_message

        @hook.listener("after_server_start")
        async def start_sending(app: Any, _loop: Any) -> None:
            await self.start()

        @hook.listener("before_server_stop")
        async def stop_sending(app: Any, _loop: Any) -> None:
            await self.stop()

        add_staff_routes(self, hook)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.configured else "off"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            checked = await self._checked_form(request, self.settings.twilio_webhook_url)
            if isinstance(checked, HTTPResponse):
                return checked
            return await self.receive(checked, on_new_message, request.app)

        @hook.route("/status", methods=["POST"])
        async def status(request: Request) -> HTTPResponse:
            checked = await self._checked_form(request, status_callback_url(self.settings.twilio_webhook_url))
            if isinstance(checked, HTTPResponse):
                return checked
            return await self.delivery_status(checked, request.args.get("ref"))

        return hook

    async def receive(self, params: FormParams, on_new_message: Callable, app: Any) -> HTTPResponse:
        """A signed patient text: validate its fields, take it in once, answer it."""
        address = parse_address(params.first("From"))
        message_sid = params.first("MessageSid") or params.first("SmsSid") or ""
        text = params.first("Body")
        try:
            media = int(params.first("NumMedia") or "0")
        except ValueError:
            return refusal(400, "NumMedia must be a number")
        if address is None:
            return refusal(400, "From must be a phone number")
        if not MESSAGE_SID.match(message_sid):
            return refusal(400, "MessageSid missing or malformed")
        if not 0 <= media <= MAX_MEDIA:
            return refusal(400, "NumMedia out of range")
        if text is None and media == 0:
            return refusal(400, "Body missing")
        mark_sensitive(address.value, address.number, text or "")
        spooled = SpooledText(address.value, message_sid, text or "", media, utcnow().isoformat())
        staff = self.on_call_contact(address)
        # The safety screen reads the text while the store takes it in: if the store is slow or
        # down, the urgent guidance is ready when its wait ends instead of after another parse.
        # An on-call contact's text is staff text: never screened.
        screening = asyncio.ensure_future(self._screened("" if staff else text or "", self._agent(app)))
        try:
            intake = await bounded(self.service.take_in(address, message_sid), self.settings.sms_store_timeout_seconds)
        except STORE_ERRORS as exc:
            logger.error("could not record an incoming text (%s); spooling it and answering without the store",
                         type(exc).__name__)
            return await self.answer_without_store(spooled, app, screening)
        finally:
            if not screening.done():
                screening.cancel()  # the store answered: Rasa reads the text in the turn itself
        if intake.duplicate:
            logger.info("text %s… was already taken in; Twilio retried the webhook", message_sid[:10])
            return twiml()
        try:
            await self.answer(intake, text or "", media, on_new_message, app, staff=staff)
        except NotQueued as failure:
            logger.error("could not queue the answer to conversation %s; sent it in the webhook's answer",
                         short_id(intake.sender_id))
            return twiml_replies(failure.parts)
        except STORE_ERRORS as exc:
            logger.error("the store failed before conversation %s was read (%s); spooling the text",
                         short_id(intake.sender_id), type(exc).__name__)
            return await self.answer_without_store(spooled, app)
        if self.sender is not None:
            self.sender.wake()
        return twiml()

    async def answer_without_store(
        self, text: SpooledText, app: Any, screening: Optional["asyncio.Future[dict[str, Any]]"] = None
    ) -> HTTPResponse:
        """Spool a text the store could not take, and answer it in the webhook's TwiML (see the module docstring).

        ``screening`` is the screen's reading of the text if it was started already.
        """
        try:
            self.spool.append(text)
            kept = True
        except OSError as exc:
            kept = False
            logger.critical("could not spool an incoming text either (%s); the patient was given the clinic's phone",
                            type(exc).__name__)
        keyword = keyword_of(text.body, self.texts.keywords)
        if keyword in (OPT_OUT, OPT_IN):
            return twiml()  # recorded by the replay, which also sends STOP's one confirmation
        address = parse_address(text.address)
        if address is not None and self.on_call_contact(address) is not None:
            return twiml()  # staff acknowledging an alert: the replay records it and replies
        if keyword == HELP:
            return twiml_replies([self.texts.render("help", self.clinic)])
        if text.media and not text.body.strip():
            return twiml_replies([self.texts.render("media_only", self.clinic)])
        agent = self._agent(app)
        parsed = await (screening if screening is not None and not screening.cancelled()
                        else self._screened(text.body, agent))
        if is_red_flag(parsed):
            logger.warning("red flag in a text the store could not take: sent the urgent guidance")
            return twiml_replies(red_flag_replies(self.clinic, await self._guidance(parsed, agent)))
        return twiml_replies([kept_for_later(self.clinic) if kept else failure_reply(self.clinic)])

    @staticmethod
    def _agent(app: Any) -> Any:
        """The Rasa agent serving this channel (``None`` before the server has loaded it)."""
        return getattr(getattr(app, "ctx", None), "agent", None)

    async def _screened(self, body: str, agent: Any) -> dict[str, Any]:
        """The model's parse of one text with the safety screen's verdict (no conversation, no store)."""
        cleaned = clean_text(body, self.settings.max_message_chars)
        if cleaned.empty or agent is None:
            return {}
        try:
            parsed = await asyncio.wait_for(agent.parse_message(cleaned.text), PARSE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - no verdict: the answer still gives the emergency number
            logger.error("could not screen a text answered without the store (%s)", type(exc).__name__)
            return {}
        return parsed if isinstance(parsed, dict) else {}

    async def _guidance(self, parsed: dict[str, Any], agent: Any) -> str:
        """The assistant's own urgent guidance for this verdict (its class and level of care, from the
        Rasa server's response generator), else the general red-flag text."""
        nlg, domain = getattr(agent, "nlg", None), getattr(agent, "domain", None)
        if nlg is None or domain is None:
            return self._urgent_guidance
        try:
            tracker = DialogueStateTracker.from_events(
                "sms-without-store", [UserUttered(parsed.get("text"), parse_data=parsed)], slots=domain.slots
            )
            message = await nlg.generate(ADVERSE_EVENT, tracker, CHANNEL_NAME)
        except Exception as exc:  # noqa: BLE001 - the general guidance is always there to fall back on
            logger.error("could not render the class's urgent guidance (%s); sent the general one", type(exc).__name__)
            return self._urgent_guidance
        text = " ".join(str((message or {}).get("text") or "").split())
        return text or self._urgent_guidance

    # ---- the spool's replay ---------------------------------------------------------------------

    def _app(self) -> Any:
        try:
            return next(iter(self._hook.apps)) if self._hook is not None else None
        except Exception:  # noqa: BLE001 - Sanic raises its own error before the blueprint is registered
            return None

    async def replay_spool(self) -> int:
        """Take spooled texts in and answer them as if they had just come; returns how many were handled."""
        if self.service is None or self._on_new_message is None or not self.spool.pending():
            return 0
        return await self.spool.replay(self._replay_one)

    async def _replay_one(self, item: SpooledText) -> None:
        address = parse_address(item.address)
        if address is None:
            logger.error("a spooled text has no usable number; skipped")
            return
        mark_sensitive(address.value, address.number, item.body)
        # ``again``: a take-in abandoned at the time-out may have committed without the text being read.
        intake = await bounded(
            self.service.take_in(address, item.message_sid, again=True), self.settings.store_timeout_seconds
        )
        try:
            await self.answer(intake, item.body, item.media, self._on_new_message, self._app(),
                              staff=self.on_call_contact(address))
        except NotQueued:
            logger.error("replayed a spooled text for conversation %s but could not queue the answer",
                         short_id(intake.sender_id))
        if self.sender is not None:
            self.sender.wake()

    async def _replay_forever(self) -> None:
        while not self._stop.is_set():
            try:
                await self.replay_spool()
            except OSError as exc:
                logger.error("could not read the SMS spool (%s)", type(exc).__name__)
            except Exception:  # noqa: BLE001 - the replay must outlive one bad pass; /healthz shows a stuck spool
                logger.exception("unexpected error replaying the SMS spool; will retry")
            try:
                await asyncio.wait_for(self._stop.wait(), REPLAY_INTERVAL_SECONDS)
            except asyncio.TimeoutError:
                pass

    def on_call_contact(self, address: Address) -> Optional[OnCallContact]:
        """The clinic's on-call contact writing from ``address`` (SMS or WhatsApp, same number), else ``None``."""
        return on_call_contact(self.clinic, address.number)

    async def answer(
        self, intake: Intake, text: str, media: int, on_new_message: Callable, app: Any,
        staff: Optional[OnCallContact] = None,
    ) -> None:
        """Keywords, opt-outs, limits and media first; then the assistant; then queue the replies.

        ``staff``: the text is from an on-call contact: after STOP/START it is recorded as
        their acknowledgement (:meth:`acknowledge_on_call`), never read by the assistant.

        A store failure before the assistant read the text raises (the caller spools the
        text); after it, :class:`NotQueued` carries the replies to send another way.
        """
        service = self.service
        # The store took the text in, so it is up: a slow write now is load, not an outage, and gets
        # the store's usual bound (only the take-in, which decides whether to spool, is kept short).
        timeout = self.settings.store_timeout_seconds
        keyword = keyword_of(text, self.texts.keywords)
        if keyword == OPT_OUT:
            if await bounded(service.opt_out(intake), timeout):
                logger.info("conversation %s opted out of texts", short_id(intake.sender_id))
            return
        if keyword == OPT_IN and await bounded(service.opt_in(intake), timeout):
            logger.info("conversation %s opted in to texts again", short_id(intake.sender_id))
            return
        if staff is not None:
            await self.acknowledge_on_call(intake, staff, keyword)
            return
        agent = self._agent(app)
        if intake.opted_out:
            await self._opted_out_text(intake, text, agent)
            return
        intro = [self.texts.render("first_contact", self.clinic)] if intake.first else []
        if keyword == HELP:
            await bounded(service.queue_texts(intake, intro + [self.texts.render("help", self.clinic)]), timeout)
            return
        limit = self.settings.sms_messages_per_minute
        if intake.this_minute > limit and not intake.staff_holding:
            # Screened first: a red flag is answered whatever the limit; anything else is kept and shown.
            parsed = await self._screened(text, agent)
            if not is_red_flag(parsed):
                logger.warning("rate limit reached for conversation %s; the text is kept for staff",
                               short_id(intake.sender_id))
                await self._keep_unanswered(intake, text, agent, unanswered.RATE_LIMITED, parsed)
                if intake.this_minute == limit + 1:
                    await bounded(service.queue_texts(intake, intro + [rate_limited_reply(self.clinic)]), timeout)
                return
            logger.warning("red flag over the rate limit in conversation %s: answered", short_id(intake.sender_id))
        if media and not text.strip():
            await bounded(service.queue_texts(intake, intro + [self.texts.render("media_only", self.clinic)]), timeout)
            return
        if intake.more is not None and asks_for_more(text, self.texts.more):
            await bounded(service.send_full_answer(intake), timeout)
            return
        before = [{"text": self.texts.render("media_ignored", self.clinic)}] if media else []
        choice = selected(text, intake.choices)
        if choice is not None:
            text = choice.payload
        output = SmsOutput()
        handler = guard(
            on_new_message, self.clinic, self.settings.max_message_chars, paused=lambda sender: _paused(app, sender)
        )
        message = UserMessage(text, output, intake.sender_id, input_channel=intake.kind, metadata={"channel": intake.kind})
        await handler(message)
        if intro and not any(reply.get("utter_action") == DISCLOSURE for reply in output.messages):
            before = [{"text": line} for line in intro] + before  # e.g. the guard answered without Rasa
        urgent = await _red_flag_turn(agent, message)
        # A red flag's urgent guidance is the first text; notices (the opening, the picture) follow it.
        turn = output.messages + before if urgent else before + output.messages
        offer = self.texts.render("more_offer", self.clinic)
        messages, full = self.short_answers.shorten(turn, offer)
        messages = fit_offer(
            messages, offer, self.texts.render("more_offer_short", self.clinic), self.texts.answer_segments
        )
        if urgent and intake.first:
            messages = urgent_first(messages, _opening(intro), self.texts.render("urgent_disclosure", self.clinic))
        try:
            await bounded(service.queue_turn(intake, messages, more=full, urgent=urgent), timeout)
        except STORE_ERRORS as exc:
            raise NotQueued(render_turn(messages, self.texts.part_chars).parts) from exc

    async def acknowledge_on_call(self, intake: Intake, staff: OnCallContact, keyword: Optional[str]) -> None:
        """An on-call contact texted back: HELP is answered as for anyone; anything else acknowledges their alerts."""
        timeout = self.settings.store_timeout_seconds
        if keyword == HELP:
            await bounded(self.service.queue_texts(intake, [self.texts.render("help", self.clinic)]), timeout)
            return
        await bounded(self.on_call_replies.acknowledge(intake.contact_id, staff, intake.kind), timeout)

    async def _keep_unanswered(
        self, intake: Intake, text: str, agent: Any, reason: str, parsed: dict[str, Any]
    ) -> Optional[dict[str, Any]]:
        """Store a text the assistant does not answer in the conversation staff see, with why."""
        note = self.texts.unanswered[reason]
        return await unanswered.record(agent, intake.sender_id, text, intake.kind, reason, note, parsed)

    async def _opted_out_text(self, intake: Intake, text: str, agent: Any) -> None:
        """A text after STOP: stored, screened and shown, never answered; a red flag is an urgent case to phone."""
        parsed = await self._screened(text, agent)
        state = await self._keep_unanswered(intake, text, agent, unanswered.OPTED_OUT, parsed)
        logger.info("a text from opted-out conversation %s was kept for staff, not answered", short_id(intake.sender_id))
        if not is_red_flag(parsed):
            return
        number = await self.service.number_of(intake)
        if state is None or number is None or self.escalations is None:
            logger.critical("red flag from opted-out conversation %s could not be escalated", short_id(intake.sender_id))
            return
        outcome = await self.escalations.escalate(unanswered.urgent_case(state, number))
        logger.warning("red flag from opted-out conversation %s: urgent case for staff to phone (%s)",
                       short_id(intake.sender_id), "stored" if outcome.stored else "spooled" if outcome.spooled else "LOST")

    async def delivery_status(self, params: FormParams, ref: Optional[str]) -> HTTPResponse:
        """A signed delivery status callback: record it on the text it is about."""
        message_sid = params.first("MessageSid") or params.first("SmsSid") or ""
        status = (params.first("MessageStatus") or params.first("SmsStatus") or "").lower()
        error_code = params.first("ErrorCode") or None
        if not MESSAGE_SID.match(message_sid) or status not in STATUSES:
            return refusal(400, "MessageSid and MessageStatus required")
        row_id = int(ref) if ref and ref.isdigit() and len(ref) < 12 else None
        try:
            known = await bounded(
                self.service.record_delivery(message_sid, row_id, status, error_code), self.settings.store_timeout_seconds
            )
        except (SQLAlchemyError, OSError, asyncio.TimeoutError) as exc:
            logger.error("could not record a delivery status (%s); answered 503", type(exc).__name__)
            return refusal(503, "store_unavailable")
        if not known:
            logger.info("delivery status for an unknown text %s…", message_sid[:10])
        return response.empty(status=204)


def _opening(intro: list[str]) -> Callable[[dict[str, Any]], bool]:
    """Whether a reply is the conversation's opening (the assistant's or the channel's first-contact notice)."""
    return lambda reply: reply.get("utter_action") == DISCLOSURE or (
        not reply.get("utter_action") and reply.get("text") in intro
    )


async def _red_flag_turn(agent: Any, message: UserMessage) -> bool:
    """Whether the safety screen called this turn's text a red flag (its event in the conversation).

    The guard may answer without Rasa (a failure): then the conversation's latest message is
    an earlier one, told apart by its message id, and the answer is not urgent guidance.
    """
    tracker_store = getattr(agent, "tracker_store", None)
    if tracker_store is None:
        return False
    try:
        tracker = await tracker_store.retrieve(message.sender_id)
    except Exception as exc:  # noqa: BLE001 - unknown: the turn goes out as any other
        logger.error("could not read the verdict of conversation %s (%s)", short_id(message.sender_id),
                     type(exc).__name__)
        return False
    latest = getattr(tracker, "latest_message", None)
    if latest is None or latest.message_id != message.message_id:
        return False
    return is_red_flag(latest.parse_data or {})


async def _paused(app: Any, sender_id: str) -> bool:
    """Whether staff hold the conversation (Rasa's ``ConversationPaused`` is in force)."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    if agent is None or getattr(agent, "tracker_store", None) is None:
        return False
    tracker = await agent.tracker_store.retrieve(sender_id)
    return bool(tracker is not None and tracker.is_paused())
