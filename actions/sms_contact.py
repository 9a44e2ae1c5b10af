"""The contact form on SMS and WhatsApp, where the patient's number is already known.

A patient who texts the clinic has given their number by texting it, so the form
confirms it ("the number you're texting from, ending 0123?") instead of asking for it
again, and "reply by text" is a contact route: staff answer from the dashboard through
the same channel (:mod:`bot.dashboard.web.handoff_routes`). On WhatsApp a free-text reply is possible
only within 24 hours of the patient's last message, so the route is offered there only
when the clinic is open now (staff follow up within hours) or an approved template is
configured to reopen the conversation later.

The number is read from the store by the conversation id (never carried in the
conversation itself).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from bot.core.channel_names import MESSAGING
from bot.core.messaging import store
from bot.core.messaging.addresses import WHATSAPP, Address, parse_address
from bot.core.store.db import bounded

logger = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 2.0
CONFIRMATION = re.compile(
    r"^(yes|yeah|yep|yup|y|ok|okay|sure|correct|that'?s (right|fine|it|correct)|that one|this one|"
    r"(use )?(this|that|the same|same)( number| one)?|please do)\b",
    re.IGNORECASE,
)


def on_messaging(tracker: Tracker) -> bool:
    """Whether the patient is writing by SMS or WhatsApp."""
    return tracker.get_latest_input_channel() in MESSAGING


async def known_address(tracker: Tracker) -> Optional[Address]:
    """The address the patient is texting from, read from the store; ``None`` off SMS or if unknown."""
    if not on_messaging(tracker):
        return None

    async def lookup() -> Optional[str]:
        async with deps.service().sessions() as session:
            contact = await store.contact_by_sender(session, tracker.sender_id)
            return contact.address if contact else None

    try:
        return parse_address(await bounded(lookup(), LOOKUP_TIMEOUT))
    except Exception as exc:  # noqa: BLE001 - unknown number: the form asks for it like on the web
        logger.warning("could not read the number of a messaging conversation (%s)", type(exc).__name__)
        return None


def text_reply_possible(tracker: Tracker, now: Optional[datetime] = None) -> bool:
    """Whether staff can answer by text later: always on SMS; on WhatsApp within its window rules."""
    if tracker.get_latest_input_channel() != WHATSAPP:
        return True
    if deps.settings().twilio_whatsapp_template_sid:
        return True
    return deps.clinic().is_open(now or datetime.now(timezone.utc))


def confirms_number(tracker: Tracker, value: Any) -> bool:
    """Whether the answer to "shall we use this number?" is yes."""
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    return intent == "affirm" or bool(CONFIRMATION.match(" ".join(str(value or "").split())))


def text_follow_up() -> str:
    """What a patient who chose a reply by text is told after the escalation is stored."""
    return " We'll reply by text to this number."


class ActionAskContactDetail(Action):
    """Ask for the contact detail, or, on SMS and WhatsApp, confirm the number the patient texts from."""

    def name(self) -> Text:
        return "action_ask_contact_detail"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if tracker.get_slot("contact_method") == "phone":
            address = await known_address(tracker)
            if address is not None:
                dispatcher.utter_message(response="utter_ask_contact_detail_known_number", number_ending=address.ending)
                return []
        dispatcher.utter_message(response="utter_ask_contact_detail")
        return []
