"""First stage of the two-stage fallback: "Did you mean ...?" with buttons."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import deps

# Intents a suggestion button may offer: (title, payload). Payloads are either
# one of the channels' allowed /intent payloads or a question the model maps back.
SUGGESTIBLE = {
    "ask_contraindication": ("Who shouldn't have dry needling?", "Who shouldn't have dry needling?"),
    "report_adverse_event": ("I have a problem after a treatment", "I have a problem after my dry needling treatment"),
    "book_appointment": ("Booking an appointment", "/book_appointment"),
    "clinic_info": ("Opening hours and address", "What are your opening hours and address?"),
    "request_human": ("Talk to a person", "/request_human"),
}
# Offered when the model has no plausible candidate at all.
POPULAR = ("what_is_dry_needling", "does_it_hurt", "safety")
MAX_SUGGESTIONS = 3


def suggestions(message: Dict[Text, Any]) -> List[Dict[Text, str]]:
    """Buttons for the most likely meanings of the latest message."""
    buttons: List[Dict[Text, str]] = []
    ranking = [r for r in message.get("intent_ranking") or [] if r.get("name") not in {"nlu_fallback", None}]
    faq_ranking = ((message.get("response_selector") or {}).get("faq") or {}).get("ranking") or []
    kb = deps.knowledge()
    for candidate in ranking[:3]:
        name = candidate["name"]
        if name == "faq":
            for response in faq_ranking[:2]:
                topic = str(response.get("intent_response_key", "")).split("/", 1)[-1]
                if topic in kb.faq:
                    # The title is a question the model maps back to the topic:
                    # retrieval intents cannot be forced with a /payload.
                    title = kb.title(topic)
                    buttons.append({"title": title, "payload": title})
        elif name in SUGGESTIBLE:
            title, payload = SUGGESTIBLE[name]
            buttons.append({"title": title, "payload": payload})
    if not buttons:
        buttons = [{"title": kb.title(topic), "payload": kb.title(topic)} for topic in POPULAR if topic in kb.faq]
    return list({b["payload"]: b for b in buttons}.values())[:MAX_SUGGESTIONS]


class ActionDefaultAskAffirmation(Action):
    """Offer the likeliest topics as buttons, plus "something else"."""

    def name(self) -> Text:
        return "action_default_ask_affirmation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        buttons = suggestions(tracker.latest_message)
        buttons.append({"title": "Something else", "payload": "/deny"})
        dispatcher.utter_message(response="utter_ask_affirmation", buttons=buttons)
        return []
