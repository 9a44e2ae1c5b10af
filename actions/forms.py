"""Validation of the contact form: name, contact route, contact detail, consent.

The form never traps the patient:

* a question about dry needling asked at any step (:func:`actions.faq.faq_question`) is not
  taken as the answer: the form is rejected for this turn, the rule for an FAQ inside the
  form answers it with ``utter_faq`` (the same answer as anywhere else), and the form asks
  its question again;
* typed answers count at every step: a route in words ("ring me", "by email"), or the phone
  number or email address itself at the route step; anything but yes or no at the consent
  step gets a re-ask that says a yes or no is wanted (``utter_invalid_contact_consent``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import deps
from actions.contact_options import chat_reply_possible
from actions.faq import faq_question, form_rules
from actions.sms_contact import confirms_number, known_address, on_messaging
from bot.core.escalation.contact import CHAT_DETAIL, clean_email, clean_name, clean_phone, normalise_method


class ValidateContactForm(FormValidationAction):
    """Checks each answer; a bad answer is asked again with a short explanation."""

    def name(self) -> Text:
        return "validate_contact_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        """Reject the form for this turn when the answer just taken is an FAQ question; else validate."""
        requested = tracker.get_slot("requested_slot")
        if requested and requested in tracker.slots_to_validate() and faq_question(tracker):
            # Undo the slot Rasa filled from the question's text; the rules answer it, then the form asks again.
            return [SlotSet(requested, None), ActionExecutionRejected(self.form_name())]
        return await super().run(dispatcher, tracker, domain)

    async def validate_contact_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        name = None if not_a_name(tracker) else clean_name(str(value or ""))
        if name is None:
            dispatcher.utter_message(response="utter_invalid_contact_name")
        return {"contact_name": name}

    async def validate_contact_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        text = str(value or "")
        # The detail itself ("sam@example.com", "07912 345678") says the route too.
        email, phone = clean_email(text), clean_phone(text, deps.clinic().phone_region)
        if email or phone:
            return {"contact_method": "email" if email else "phone", "contact_detail": email or phone}
        method = normalise_method(text)
        if method is None:
            dispatcher.utter_message(response="utter_invalid_contact_method")
            return {"contact_method": None}
        if method == "chat":
            if not await chat_reply_possible(tracker):
                # Not offered: nobody can reply here now (or this is not the website chat).
                dispatcher.utter_message(response="utter_chat_reply_unavailable")
                return {"contact_method": None}
            # Staff reply in this conversation: nothing more to ask.
            return {"contact_method": method, "contact_detail": f"{CHAT_DETAIL} ({tracker.get_latest_input_channel()})"}
        return {"contact_method": method}

    async def validate_contact_detail(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        method = tracker.get_slot("contact_method")
        text = str(value or "")
        if method == "phone" and on_messaging(tracker) and confirms_number(tracker, text):
            address = await known_address(tracker)  # SMS/WhatsApp: "yes, the number I'm texting from"
            if address is not None:
                return {"contact_detail": address.number}
        if method == "email":
            detail = clean_email(text)
            if detail is None:
                dispatcher.utter_message(response="utter_invalid_email")
        else:
            detail = clean_phone(text, deps.clinic().phone_region)
            if detail is None:
                dispatcher.utter_message(response="utter_invalid_phone")
        return {"contact_detail": detail}

    async def validate_contact_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if value is True:
            return {"contact_consent": True}
        # Typed text that is not a yes (a name, "maybe"): say plainly that a yes or no is wanted.
        dispatcher.utter_message(response="utter_invalid_contact_consent")
        return {"contact_consent": None}


def not_a_name(tracker: Tracker) -> bool:
    """Whether the latest message is a yes, a greeting or thanks rather than a name (data/contact_form.yml)."""
    rule = form_rules()["not_a_name"]
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name") in rule["intents"] and float(intent.get("confidence") or 0.0) >= float(rule["min_confidence"])
