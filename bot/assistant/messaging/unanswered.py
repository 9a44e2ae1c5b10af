"""A patient text the assistant does not answer is still kept, screened and shown to staff.

Two rules stop the assistant answering a text: the number texted STOP (nothing may be
sent to it), or it is over its rate limit. The text is never dropped:

* it goes into the conversation Rasa keeps (its tracker store) as the patient's message,
  a ``UserUttered`` event written under the conversation's lock without running the
  policies, exactly as Rasa itself records a message while staff hold the conversation.
  The dashboard's conversation view (:mod:`bot.dashboard.staff.conversation`) and its
  live updates read that store, so the text appears there with no new table and no new
  reader; the event's ``metadata.sms.unanswered`` says why it got no automated answer
  (the reason and the staff-facing words of ``data/sms.yml``), and its ``parse_data``
  carries the safety screen's verdict when the text was screened;
* a red flag from a number that opted out raises an urgent escalation with the number as
  the contact route, for staff to phone (:func:`urgent_case`); the patient is not texted.

Patient text stays in the tracker and the escalation: never in a log line.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Optional

from rasa.shared.core.events import UserUttered

from bot.core.escalation.record import escalation_input
from bot.core.privacy import short_id
from bot.core.store.repository import EscalationInput

logger = logging.getLogger(__name__)

#: The metadata key under which the channel notes why a text got no automated answer.
METADATA_KEY = "sms"
OPTED_OUT = "opted_out"
RATE_LIMITED = "rate_limited"
#: The escalation reason of a red flag.
EMERGENCY = "emergency"


def unanswered_metadata(reason: str, note: str, kind: str) -> dict[str, Any]:
    """The event metadata saying why the text got no automated answer (what the dashboard shows)."""
    return {"channel": kind, METADATA_KEY: {"unanswered": reason, "note": note}}


async def record(
    agent: Any, sender_id: str, text: str, kind: str, reason: str, note: str,
    parsed: Optional[dict[str, Any]] = None,
) -> Optional[dict[str, Any]]:
    """Write the text into the conversation as the patient's message; returns the conversation's state.

    ``None`` when the agent has no tracker store yet (the server is still loading): the
    caller logs it, the store's inbound row still counts the text.
    """
    tracker_store = getattr(agent, "tracker_store", None)
    lock_store = getattr(agent, "lock_store", None)
    if tracker_store is None or lock_store is None:
        logger.error("could not record an unanswered text of conversation %s: no tracker store", short_id(sender_id))
        return None
    parse_data = dict(parsed or {})
    parse_data.setdefault("text", text)
    metadata = unanswered_metadata(reason, note, kind)
    event = UserUttered(
        text, intent=parse_data.get("intent") or None, entities=parse_data.get("entities") or [],
        parse_data=parse_data, input_channel=kind, metadata=metadata,
    )
    async with lock_store.lock(sender_id):
        tracker = await tracker_store.get_or_create_tracker(sender_id)
        tracker.update(event)
        await tracker_store.save(tracker)
    return tracker.current_state()


def urgent_case(state: dict[str, Any], number: str) -> EscalationInput:
    """The urgent escalation of a red flag that gets no automated answer: staff phone ``number``."""
    record_ = escalation_input(state, EMERGENCY, consent=None, contact_given=True)
    trigger = {**record_.trigger, "unanswered": OPTED_OUT,
               "contact_permission": "the patient texted STOP: phone them, do not text"}
    return dataclasses.replace(record_, contact_method="phone", contact_detail=number, trigger=trigger)
