"""Session start: every conversation opens by saying what the assistant is.

A new session also ends the previous one, and with it any contact form still open
(``carry_over_slots_to_new_session`` is off). A patient who reported a problem after
treatment, asked a personal health question or asked for a person, started the contact
form (or was offered it) and then stopped answering until the session expired, or
restarted the conversation, leaves nothing behind but the form's unsent answers. So the
session start records it first: a ``contact_form_abandoned`` audit entry, on the
conversation's open escalation for that reason when there is one (an adverse event's
incident record always exists), else against the conversation. The entry says which
stage was left (``form`` or ``offer``), what the form was asking for, and why the
session ended; never any answer the patient gave.

Recording never holds up the disclosure: it is bounded well inside the Rasa server's
action timeout, and a failure is logged and passed over. When the action server cannot
run this action at all, the Rasa server says the disclosure itself
(:class:`bot.assistant.servers.action_client.LocalFallback`) and nothing is recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import deps
from bot.core.store import repository as repo
from bot.core.store.db import bounded
from bot.core.store.models import AuditEvent, AuditKind, Reason

logger = logging.getLogger(__name__)

FORM = "contact_form"
OFFER = "utter_offer_handoff"
#: Seconds the session start waits for the store; well inside ACTION_TIMEOUT_SECONDS (3 s by default).
RECORD_TIMEOUT = 1.5


@dataclass(frozen=True)
class AbandonedForm:
    """A contact form (or the offer of one) the previous session ended with, unanswered."""

    #: ``form``: the form was asking a question; ``offer``: the offer to be contacted was the last word.
    stage: str
    reason: Optional[str]
    #: The form's question left unanswered (``contact_name``, ``contact_detail``, ...), if any.
    asked_for: Optional[str]
    #: ``restart`` (the conversation was restarted) or ``new_session`` (it expired, or a new one was asked for).
    ended_by: str
    #: When the form started or the offer was made.
    since: Optional[datetime]

    def detail(self) -> dict[str, Any]:
        """The audit entry's detail: names of slots and reasons only, never what the patient wrote."""
        return {"stage": self.stage, "reason": self.reason, "asked_for": self.asked_for, "ended_by": self.ended_by}


def _when(event: dict[str, Any]) -> Optional[datetime]:
    stamp = event.get("timestamp")
    return datetime.fromtimestamp(stamp, timezone.utc) if isinstance(stamp, (int, float)) else None


def abandoned_form(events: Iterable[dict[str, Any]]) -> Optional[AbandonedForm]:
    """The contact form the conversation's latest session left open, read from its events (``None``: none).

    Events of sessions that already ended (before a ``session_started``) are history: their
    session start looked at them. A ``restart`` wipes Rasa's slots, so the form is read from
    the events before it.
    """
    loop = reason = requested = None
    offered = since = None
    ended_by = "new_session"
    for event in events:
        kind = event.get("event")
        if kind == "session_started":
            loop = reason = requested = offered = since = None
            ended_by = "new_session"
        elif kind == "restart":
            ended_by = "restart"
        elif kind == "active_loop":
            if event.get("name") == FORM and loop != FORM:
                since = _when(event)
            loop = event.get("name")
        elif kind == "slot" and event.get("name") == "escalation_reason":
            reason = event.get("value")
        elif kind == "slot" and event.get("name") == "requested_slot":
            requested = event.get("value")
        elif kind == "bot":
            said = (event.get("metadata") or {}).get("utter_action")
            offered = (_when(event) or datetime.now(timezone.utc)) if said == OFFER else None
    if loop == FORM:
        return AbandonedForm("form", reason, requested, ended_by, since)
    if offered is not None and reason:
        return AbandonedForm("offer", reason, None, ended_by, offered)
    return None


async def _record(sender_id: str, form: AbandonedForm) -> bool:
    """Write the entry once per abandoned form; False if it was already there."""
    async with deps.service().sessions() as session:
        async with session.begin():
            earlier = select(AuditEvent.id).where(
                AuditEvent.sender_id == sender_id, AuditEvent.kind == AuditKind.contact_form_abandoned,
            )
            if form.since is not None:
                earlier = earlier.where(AuditEvent.created_at >= form.since)
            if (await session.execute(earlier.limit(1))).first() is not None:
                return False
            escalation = None
            if form.reason in {reason.value for reason in Reason}:
                escalation = await repo.find_escalation(session, sender_id, Reason(form.reason))
            await repo.add_audit(
                session, AuditKind.contact_form_abandoned, sender_id=sender_id,
                escalation_id=escalation.id if escalation is not None else None, detail=form.detail(),
            )
            return True


async def record_abandoned(sender_id: str, form: AbandonedForm) -> bool:
    """Record an abandoned contact form; never raises (the disclosure must go out whatever happens)."""
    try:
        return await bounded(_record(sender_id, form), RECORD_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - a store that is down or slow must not cost the patient the reply
        logger.error("could not record an abandoned contact form (%s)", type(exc).__name__)
        return False


class ActionSessionStart(Action):
    """Start the session with the automated-assistant disclosure; note a contact form left unfinished."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        form = abandoned_form(tracker.events)
        if form is not None:
            await record_abandoned(tracker.sender_id, form)
        dispatcher.utter_message(response="utter_disclosure")
        return [SessionStarted(), ActionExecuted("action_listen")]
