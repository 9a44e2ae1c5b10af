"""FAQ follow-ups: every curated answer ends with an offer ("Would you like to know ...?").
When the patient says yes, this gives the answer that offer promised."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import deps


def last_answer(tracker: Tracker) -> Optional[str]:
    """The response name of the assistant's latest curated answer, if any."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            continue
        if event.get("event") == "bot":
            name = (event.get("metadata") or {}).get("utter_action") or ""
            return name if name.startswith("utter_faq/") else None
    return None


class ActionAnswerFollowUp(Action):
    """Answer the follow-up the previous FAQ answer offered."""

    def name(self) -> Text:
        return "action_answer_follow_up"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        previous = last_answer(tracker)
        answer = deps.knowledge().answers.get(previous or "")
        if answer and answer.follow_up:
            dispatcher.utter_message(response=answer.follow_up)
        else:
            dispatcher.utter_message(response="utter_anything_else")
        return []
