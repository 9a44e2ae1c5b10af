"""The Rasa server's calls to the action server: short, and never the end of an urgent reply.

Rasa waits up to five minutes for a custom action. A patient in danger cannot, so the
Rasa server (:mod:`bot.assistant.servers.rasa`) calls the action server through
:class:`GuardedActionEndpoint`:

* every call is bounded by ``ACTION_TIMEOUT_SECONDS``;
* when a call times out, the connection is refused, or the action server answers
  with an error other than a form's rejection (400), the actions that matter are
  answered here, in the Rasa process (:class:`LocalFallback`): the session's
  disclosure; an emergency or adverse event is written to the escalation spool
  (:mod:`bot.core.escalation.spool`, the same locked file the web app replays into the
  store) and the patient is given the clinic's phone number; a contact form's
  result and a declined offer are spooled the same way. Any other action fails as
  before and the channel's guard sends its true fallback message;
* the call that records an emergency (:data:`URGENT_ACTION` on a message the screen routed
  as an emergency) is raced against a ``/health`` check: past ``URGENT_ACTION_TIMEOUT_SECONDS``
  (1 s) with no answer to either, the action server counts as hung and the Rasa process
  spools the record itself, so the REST and SMS answers, which wait for the whole turn, still
  come within 2 s when the action server hangs at that very moment. If its health check
  answered, it is only slow: the call keeps its ``ACTION_TIMEOUT_SECONDS`` and the patient is
  told what really happened, not that the team could not be reached. A hung action server that
  wakes up later may still store the record it was sent: the store keeps one record per
  patient message (``WRITE_KEY``, :mod:`bot.core.store.repository`), whoever writes it first;
* after a timeout the action server is skipped for :data:`RETRY_AFTER_SECONDS` (5 s), so a
  hung action server costs one timeout, not one per action; and a watcher asks its
  ``/health`` every second: after two checks in a row unanswered within 2 s it is skipped
  until it answers again, so a patient writing while it is hung waits for no timeout at all.
  A refused check (the process is dead or restarting) marks nothing: calls fail at once.

Calls share one HTTP session whose idle connections are kept alive for
:data:`KEEPALIVE_SECONDS` (Rasa's own endpoint opened a session, and so a TCP connection,
per action call). That is less than the action server's (Sanic's) 5 s, so the server never
closes a connection this side is about to reuse; should it happen anyway, the call is sent
once more on a new connection.

The urgent guidance itself never depends on this: it is a response the Rasa server
renders before any custom action runs (``utter_adverse_event``, :mod:`bot.assistant.nlg`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any, Callable, Optional
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.client_exceptions import ContentTypeError
from rasa.utils.endpoints import ClientResponseError, EndpointConfig, concat_url

from bot.core.escalation import record
from bot.core.escalation.spool import Spool

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5.0
PROBE_INTERVAL_SECONDS = 1.0
#: A health check is not on a patient's path: it may wait longer than an action call.
PROBE_TIMEOUT_SECONDS = 2.0
#: Unanswered health checks in a row before the action server counts as hung.
PROBE_MISSES = 2
#: The action that records an emergency: bounded by the urgent timeout when its health check is silent too.
URGENT_ACTION = "action_handle_adverse_event"
#: The action server refused the action's input (a form's validation): Rasa handles it, not us.
REJECTED = 400
#: Idle connections to the action server are kept this long (Sanic closes them after 5 s).
KEEPALIVE_SECONDS = 3.0
FORM_SLOTS = ("contact_name", "contact_method", "contact_detail", "contact_consent", "requested_slot")


class ActionServerUnavailable(aiohttp.ClientConnectionError):
    """The action server could not run an action and nothing here answers for it."""


def slot_event(name: str, value: Any) -> dict[str, Any]:
    """A ``SlotSet`` event in Rasa's wire format."""
    return {"event": "slot", "name": name, "value": value}


def form_stopped() -> list[dict[str, Any]]:
    """Events that end the contact form and clear its answers."""
    return [{"event": "active_loop", "name": None}] + [slot_event(name, None) for name in FORM_SLOTS]


class LocalFallback:
    """What the Rasa process does itself for an action the action server could not run."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.replies: dict[str, Callable[[dict[str, Any]], Any]] = {
            "action_session_start": self.session_start,
            "action_handle_adverse_event": self.incident,
            "action_submit_escalation": self.submit,
            "action_stop_contact": self.stop_contact,
            "action_decline_contact": self.decline_contact,
        }

    def handles(self, action: Optional[str]) -> bool:
        """Whether ``action`` is answered here when the action server cannot run it."""
        return action in self.replies

    async def reply(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """The action server's answer, made here: ``{"events": [...], "responses": [...]}``."""
        return await self.replies[action](body.get("tracker") or {})

    async def _spool(self, data: Any) -> bool:
        try:
            await asyncio.to_thread(self.spool.append, data)
        except OSError as exc:
            logger.critical(
                "the action server was unreachable and a %s escalation could not be spooled either (%s)",
                data.reason.value, type(exc).__name__,
            )
            return False
        logger.warning("action server unreachable: the Rasa server spooled a %s escalation", data.reason.value)
        return True

    async def session_start(self, state: dict[str, Any]) -> dict[str, Any]:
        """The disclosure every conversation opens with."""
        return {
            "events": [{"event": "session_started"}, {"event": "action", "name": "action_listen"}],
            "responses": [{"response": "utter_disclosure"}],
        }

    async def incident(self, state: dict[str, Any]) -> dict[str, Any]:
        """An emergency or adverse event: spooled at once, the patient given the clinic's phone number."""
        reason = "emergency" if record.is_emergency(state) else "adverse_event"
        trigger = record.trigger_of(state, reason)
        consent = record.slot(state, "contact_consent")
        data = record.escalation_input(state, reason, consent, trigger, contact_given=True)
        kept = await self._spool(data)
        events = [slot_event(n, v) for n, v in record.incident_slots(state, reason, trigger).items()]
        events.append(slot_event("escalation_id", None))
        if not kept:
            response = "utter_escalation_failed"
        elif reason == "emergency":
            response = "utter_emergency_not_flagged"
        else:
            response = "utter_adverse_event_not_recorded"
        return {"events": events, "responses": [{"response": response}]}

    async def submit(self, state: dict[str, Any]) -> dict[str, Any]:
        """The completed contact form: spooled with the patient's consent; they get the phone number."""
        if record.slot(state, "contact_consent") is True:
            reason = record.slot(state, "escalation_reason") or "human_request"
            await self._spool(record.escalation_input(state, reason, True))
        events = form_stopped()[1:] + [slot_event("escalation_reason", None), slot_event("escalation_trigger", None)]
        return {"events": events, "responses": [{"response": "utter_escalation_failed"}]}

    async def _declined(self, state: dict[str, Any], response: str, stop_form: bool) -> dict[str, Any]:
        reason = record.slot(state, "escalation_reason")
        if reason in record.INCIDENT_REASONS:
            await self._spool(record.escalation_input(state, reason, False, contact_given=True))
        events = form_stopped() if stop_form else []
        return {"events": events, "responses": [{"response": response}]}

    async def stop_contact(self, state: dict[str, Any]) -> dict[str, Any]:
        """The patient stopped the contact form: the incident record notes it."""
        return await self._declined(state, "utter_contact_stopped", stop_form=True)

    async def decline_contact(self, state: dict[str, Any]) -> dict[str, Any]:
        """The patient declined the offer to be contacted: the incident record notes it."""
        return await self._declined(state, "utter_handoff_declined", stop_form=False)


class GuardedActionEndpoint(EndpointConfig):
    """Rasa's action endpoint with a short timeout and the :class:`LocalFallback`."""

    def __init__(
        self, base: EndpointConfig, timeout: float, fallback: LocalFallback, urgent_timeout: Optional[float] = None
    ) -> None:
        super().__init__(
            base.url, params=base.params, headers=base.headers, basic_auth=base.basic_auth,
            token=base.token, token_name=base.token_name, cafile=base.cafile, **base.kwargs,
        )
        self.timeout = timeout
        self.urgent_timeout = min(timeout, urgent_timeout if urgent_timeout is not None else timeout)
        self.fallback = fallback
        self.skip_until = 0.0
        self.hung = False
        self.health_url = urlunsplit(urlsplit(base.url)._replace(path="/health", query=""))
        self._watcher: Optional[asyncio.Task] = None
        self._client: Optional[aiohttp.ClientSession] = None

    def client(self) -> aiohttp.ClientSession:
        """The one session (and keep-alive connection pool) of this endpoint, made in the running loop."""
        if self._client is None or self._client.closed:
            auth = None
            if self.basic_auth:
                auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
            self._client = aiohttp.ClientSession(
                headers=self.headers,
                auth=auth,
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._client

    def start_watching(self) -> None:
        """Start the health watcher in the running event loop (once)."""
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())

    async def close(self) -> None:
        """Stop the health watcher and close the kept-alive connections."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _send(
        self, method: str, subpath: Optional[str], content_type: Optional[str], compress: bool, **kwargs: Any
    ) -> Optional[Any]:
        """Rasa's ``EndpointConfig.request`` on the shared session: JSON answer, ``ClientResponseError`` from 400."""
        headers = {"Content-Type": content_type} if content_type else {}
        headers.update(kwargs.pop("headers", None) or {})
        headers.update(self.headers)
        sslcontext = ssl.create_default_context(cafile=self.cafile) if self.cafile else None
        params = self.combine_parameters(kwargs)
        url = concat_url(self.url, subpath)
        for attempt in (1, 2):
            try:
                async with self.client().request(
                    method, url, headers=headers, params=params, compress=compress, ssl=sslcontext, **kwargs
                ) as response:
                    if response.status >= 400:
                        raise ClientResponseError(response.status, response.reason, await response.content.read())
                    try:
                        return await response.json()
                    except ContentTypeError:
                        return None
            except aiohttp.ServerDisconnectedError:
                # Most likely a kept-alive connection the server closed as it was reused, before reading
                # the call. Should the server have died mid-call instead, the second try fails to
                # connect and the fallback answers; the store keeps one record per message (WRITE_KEY).
                if attempt == 2:
                    raise
        return None  # not reached

    async def _watch(self) -> None:
        """Ask ``/health`` every second; two misses in a row mark the action server hung, an answer clears it."""
        misses = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)) as session:
            while True:
                await asyncio.sleep(PROBE_INTERVAL_SECONDS)
                try:
                    async with session.get(self.health_url) as reply:
                        answered = reply.status == 200
                except asyncio.TimeoutError:
                    answered = False
                except aiohttp.ClientError:
                    # Refused: the process is gone or restarting. A call fails at once and is
                    # answered here, so there is nothing to skip, and nothing stale to clear
                    # when it is back.
                    misses = 0
                    self.hung = False
                    continue
                misses = 0 if answered else misses + 1
                if answered and (self.hung or self.skip_until):
                    logger.info("action server answers again")
                    self.hung, self.skip_until = False, 0.0
                elif misses >= PROBE_MISSES and not self.hung:
                    logger.error("action server not answering its health check: the Rasa server answers alone")
                    self.hung = True

    async def request(  # type: ignore[override]
        self,
        method: str = "post",
        subpath: Optional[str] = None,
        content_type: Optional[str] = "application/json",
        compress: bool = False,
        **kwargs: Any,
    ) -> Optional[Any]:
        """Call the action server within the timeout; on failure, answer here or raise."""
        body = kwargs.get("json") if isinstance(kwargs.get("json"), dict) else {}
        action = body.get("next_action")
        self.start_watching()
        if self.hung:
            return await self._without_server(action, body, "not answering its health check")
        if time.monotonic() < self.skip_until:
            return await self._without_server(action, body, "skipped after a recent timeout")
        kwargs["timeout"] = aiohttp.ClientTimeout(total=self.timeout)
        call = asyncio.ensure_future(asyncio.wait_for(
            self._send(method, subpath, content_type, compress, **kwargs), self.timeout + 0.5
        ))
        waited = self.timeout
        try:
            if self._urgent(action, body):
                waited = self.urgent_timeout
                return await self._unless_hung(call)
            return await call
        except ClientResponseError as error:
            if error.status == REJECTED:
                raise
            return await self._without_server(action, body, f"answered {error.status}")
        except asyncio.TimeoutError:
            self.skip_until = time.monotonic() + RETRY_AFTER_SECONDS
            return await self._without_server(action, body, f"no answer within {waited:g} s")
        except aiohttp.ClientError as error:
            return await self._without_server(action, body, type(error).__name__)

    def _urgent(self, action: Optional[str], body: dict[str, Any]) -> bool:
        """Whether this call records an emergency (the screen's verdict on the latest message)."""
        return (
            action == URGENT_ACTION and self.urgent_timeout < self.timeout
            and record.is_emergency(body.get("tracker") or {})
        )

    async def _unless_hung(self, call: "asyncio.Future[Any]") -> Any:
        """The call's answer; ``asyncio.TimeoutError`` after the urgent timeout if ``/health`` is silent too.

        A slow action server still answers its health check (it only reads a route), so the call
        keeps its full timeout; a hung or stopped one answers neither.
        """
        probe = asyncio.ensure_future(self._answers_health(self.urgent_timeout))
        try:
            done, _ = await asyncio.wait({call}, timeout=self.urgent_timeout)
            if call in done or (probe.done() and probe.result()):
                return await call
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            raise asyncio.TimeoutError
        finally:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)

    async def _answers_health(self, within: float) -> bool:
        """Whether the action server's ``/health`` answers 200 within ``within`` seconds."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session:
                async with session.get(self.health_url) as reply:
                    return reply.status == 200
        except (asyncio.TimeoutError, aiohttp.ClientError):
            return False

    async def _without_server(self, action: Optional[str], body: dict[str, Any], why: str) -> dict[str, Any]:
        if action and self.fallback.handles(action):
            logger.error("action server unavailable for %s (%s): answered by the Rasa server", action, why)
            return await self.fallback.reply(action, body)
        logger.error("action server unavailable for %s (%s)", action, why)
        raise ActionServerUnavailable(f"action server unavailable for {action} ({why})")
