"""The action server: ``python -m bot.assistant.servers.actions`` (rasa_sdk's app, answering only Rasa).

The action server can write escalations, contact details and consent, so it
must not take calls from anyone but the Rasa server. On top of rasa_sdk's
Sanic app this module:

* binds ``BIND_HOST`` (rasa_sdk alone binds 0.0.0.0 whatever the settings say);
* requires the shared secret Rasa sends in :data:`~bot.assistant.runtime.ACTION_SECRET_HEADER`
  (written into Rasa's endpoints file by :mod:`bot.assistant.runtime`) on every route but
  ``/health``, compared in constant time; 401 without it;
* caps request bodies at :data:`MAX_BODY_BYTES` and refuses compressed bodies
  (415): rasa_sdk would otherwise inflate any zlib body it is sent;
* marks every patient value of the tracker it receives as sensitive for the
  log filter (:mod:`bot.core.privacy`);
* replaces rasa_sdk's error handler, which logs the request and echoes its
  body (the patient's messages and details) in the 500 response, with one
  that logs the action name and error type and answers a plain 500.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Iterator, Optional

from rasa_sdk import utils as sdk_utils
from rasa_sdk.endpoint import create_app as create_sdk_app
from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.assistant.runtime import ACTION_SECRET_HEADER
from bot.core import privacy, process
from bot.core.settings import Settings

# Named explicitly: run with ``python -m``, ``__name__`` would be "__main__".
logger = logging.getLogger("bot.assistant.servers.actions")

ACTIONS_PACKAGE = "actions"
PUBLIC_PATHS = frozenset({"/health"})
# A long conversation's tracker (a few KB a turn) plus the domain (~35 KB)
# stays far below this; anything bigger is not a call from our Rasa server.
MAX_BODY_BYTES = 2 * 1024 * 1024
IDENTITY_ENCODINGS = frozenset({"", "identity"})


def secret_matches(provided: Optional[str], expected: str) -> bool:
    """Whether the header carries the shared secret (constant-time; never true for an empty secret)."""
    if not provided or not expected:
        return False
    return hmac.compare_digest(provided.encode("utf-8"), expected.encode("utf-8"))


# Slots filled only this way hold the assistant's own values (an escalation id,
# a reason, a yes/no), not words the patient typed.
NON_PATIENT_MAPPINGS = frozenset({"custom", "from_intent", "from_trigger_intent"})


def assistant_slots(domain: Any) -> frozenset[str]:
    """Slots whose values never come from the patient's text, per the domain's mappings."""
    slots = domain.get("slots") if isinstance(domain, dict) else None
    names = set()
    for name, slot in (slots.items() if isinstance(slots, dict) else ()):
        mappings = slot.get("mappings") if isinstance(slot, dict) else None
        types = {m.get("type") for m in mappings if isinstance(m, dict)} if isinstance(mappings, list) else set()
        if types and types <= NON_PATIENT_MAPPINGS:
            names.add(name)
    return frozenset(names)


def patient_values(action_call: Any) -> Iterator[Any]:
    """Every value in an action call that the patient typed.

    User messages, their entities, and slots filled from text or entities
    (names, contact details). A slot the domain does not describe counts as
    the patient's. The domain itself is left out: it is the clinic's own text.
    """
    if not isinstance(action_call, dict):
        return
    tracker = action_call.get("tracker")
    if not isinstance(tracker, dict):
        return
    own = assistant_slots(action_call.get("domain"))
    slots = tracker.get("slots")
    if isinstance(slots, dict):
        yield from (value for name, value in slots.items() if name not in own)
    latest = tracker.get("latest_message")
    messages = [latest] if isinstance(latest, dict) else []
    events = tracker.get("events")
    for event in events if isinstance(events, list) else ():
        if not isinstance(event, dict):
            continue
        if event.get("event") == "user":
            messages.append(event)
            messages.append(event.get("parse_data"))
        elif event.get("event") == "slot" and event.get("name") not in own:
            yield event.get("value")
    for message in messages:
        if not isinstance(message, dict):
            continue
        yield message.get("text")
        entities = message.get("entities")
        for entity in entities if isinstance(entities, list) else ():
            if isinstance(entity, dict):
                yield entity.get("value")


def _action_name(request: Request) -> str:
    """The called action's name, for logs (never the body)."""
    try:
        body = request.json
    except SanicException:
        return "?"
    name = body.get("next_action") if isinstance(body, dict) else None
    return name if isinstance(name, str) else "?"


def harden(app: Sanic, settings: Settings) -> Sanic:
    """Add the secret check, body limits, sensitive-value marking and a quiet error handler."""
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES

    @app.middleware("request")
    async def only_rasa(request: Request) -> Optional[HTTPResponse]:
        if request.path in PUBLIC_PATHS:
            return None
        if not secret_matches(request.headers.get(ACTION_SECRET_HEADER), settings.action_secret):
            logger.warning("refused %s %s from %s: no valid action secret", request.method, request.path, request.ip)
            return response.json({"error": "unauthorized"}, status=401)
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in IDENTITY_ENCODINGS:
            return response.json({"error": "compressed bodies are not accepted"}, status=415)
        if request.method == "POST":
            try:
                privacy.mark_sensitive(*patient_values(request.json))
            except SanicException:
                return response.json({"error": "invalid body"}, status=400)
        return None

    @app.exception(Exception)
    async def quiet_errors(request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, SanicException):
            status = exception.status_code or 500
            return response.json({"error": str(exception) if status < 500 else "server error"}, status=status)
        logger.error("action %s failed: %s", _action_name(request), type(exception).__name__)
        return response.json({"error": "server error"}, status=500)

    return app


def create_app(settings: Settings) -> Sanic:
    """rasa_sdk's action app for the ``actions`` package, hardened, without CORS."""
    return harden(create_sdk_app(ACTIONS_PACKAGE, cors_origins=None), settings)


async def _reinstall_privacy_filter(_app: Sanic, _loop: Any) -> None:
    privacy.install()


def main() -> None:
    """Serve the actions until stopped."""
    settings = process.start()
    sdk_utils.update_sanic_log_level()
    app = create_app(settings)
    app.register_listener(_reinstall_privacy_filter, "after_server_start")
    logger.info("action server listening on %s:%d", settings.bind_host, settings.action_port)
    app.run(settings.bind_host, settings.action_port, workers=sdk_utils.number_of_sanic_workers(), access_log=False)


if __name__ == "__main__":
    main()
