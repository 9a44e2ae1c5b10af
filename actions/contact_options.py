"""Which ways of being contacted the contact form offers.

"Reply in this chat" is offered only when someone can actually reply: the patient is
in the website chat (the socket.io channel, the only one staff can write into from
the dashboard) and at least one staff member is signed in to the dashboard right now
(:func:`bot.core.store.presence.staff_signed_in`, read from the shared store). Otherwise the
form offers a phone call or email only, and a patient who types "chat" anyway is told
why it isn't available. If the store cannot be asked in time, chat is not offered:
never promise what nobody may be there to do.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.sms_contact import on_messaging, text_reply_possible
from bot.core.channel_names import Channel
from bot.core.store.db import bounded
from bot.core.store.presence import staff_signed_in

logger = logging.getLogger(__name__)

WEB_CHAT = Channel.socketio.value
#: Seconds to wait for the store's answer before asking without the chat option.
PRESENCE_TIMEOUT = 2.0

PresenceCheck = Callable[[], Awaitable[bool]]
_check: Optional[PresenceCheck] = None


def use_presence_check(check: Optional[PresenceCheck]) -> None:
    """Replace how staff presence is read (tests); ``None`` restores the store."""
    global _check
    _check = check


async def _from_store() -> bool:
    return await staff_signed_in(deps.service().sessions)


async def chat_reply_possible(tracker: Tracker) -> bool:
    """Whether a reply in this chat can be offered now (web chat, and staff signed in)."""
    if on_messaging(tracker):
        # SMS/WhatsApp: staff reply by text from the dashboard later, like a call back (actions/sms_contact.py).
        return text_reply_possible(tracker)
    if tracker.get_latest_input_channel() != WEB_CHAT:
        return False
    try:
        return bool(await bounded((_check or _from_store)(), PRESENCE_TIMEOUT))
    except Exception as exc:  # noqa: BLE001 - unknown presence: offer phone and email only
        logger.warning("could not tell whether staff are signed in (%s); not offering a chat reply", type(exc).__name__)
        return False


class ActionAskContactMethod(Action):
    """Ask how to contact the patient, offering only the routes someone can use."""

    def name(self) -> Text:
        return "action_ask_contact_method"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        with_chat = await chat_reply_possible(tracker)
        dispatcher.utter_message(response="utter_ask_contact_method_with_chat" if with_chat else "utter_ask_contact_method")
        return []
