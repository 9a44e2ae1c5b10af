"""Validation of the contact form: name, contact route, contact detail, consent."""

from __future__ import annotations

from typing import Any, Dict, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import deps
from actions.contact_options import chat_reply_possible
from actions.sms_contact import confirms_number, known_address, on_messaging
from bot.escalation.contact import CHAT_DETAIL, clean_email, clean_name, clean_phone, normalise_method


class ValidateContactForm(FormValidationAction):
    """Checks each answer; a bad answer is asked again with a short explanation."""

    def name(self) -> Text:
        return "validate_contact_form"

    async def validate_contact_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        name = clean_name(str(value or ""))
        if name is None:
            dispatcher.utter_message(response="utter_invalid_contact_name")
        return {"contact_name": name}

    async def validate_contact_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        method = normalise_method(str(value or ""))
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
        return {"contact_consent": True if value is True else None}
