"""What an escalation record holds, built from the conversation's tracker state.

Two processes build records: the action server (its actions) and the Rasa server
itself when the action server cannot be reached (:mod:`bot.assistant.servers.action_client`).
Both see the same tracker state, the JSON Rasa sends with every action call
(``sender_id``, ``slots``, ``latest_message``, ``events``, ``latest_input_channel``;
rasa_sdk's ``Tracker.current_state()`` has the same keys), so the record is built
here once and both write the same thing.

The safety screen's verdict on the latest message is in ``latest_message["safety"]``, read as a
:class:`~bot.core.safety.verdict.SafetyVerdict`; whether a message is an emergency is read from it,
never worked out again here. The stored priority is the decision table's for the reason
escalated (:mod:`bot.core.vocabulary`), the same the verdict carries.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from bot.core.channel_names import Channel
from bot.core.escalation.flood import client_key_of
from bot.core.safety.decision import default_table
from bot.core.safety.verdict import SafetyVerdict
from bot.core.store.models import Priority, Reason
from bot.core.store.repository import WRITE_KEY, EscalationInput

CONTACT_SLOTS = ("contact_name", "contact_method", "contact_detail")
#: Verdict fields the record keeps (the screen adds the class fields; older verdicts lack them).
VERDICT_FIELDS = ("red_flag_class", "care", "adverse_class", "language")
TRANSCRIPT_LIMIT = 60
#: Reasons whose report is a clinical incident: recorded at once, whatever the patient decides about contact.
INCIDENT_REASONS = ("emergency", "adverse_event")


def verdict_of(state: Mapping[str, Any]) -> SafetyVerdict:
    """The safety screen's verdict on the latest message (empty when there is none)."""
    return SafetyVerdict.from_parse_data(state.get("latest_message"))


def is_emergency(state: Mapping[str, Any]) -> bool:
    """Whether the screen routed the latest message as an emergency (``safety.reason``)."""
    return verdict_of(state).emergency


def slot(state: Mapping[str, Any], name: str) -> Any:
    """A slot's value in the tracker state."""
    return (state.get("slots") or {}).get(name)


def transcript(events: list[dict[str, Any]], limit: int = TRANSCRIPT_LIMIT) -> list[dict[str, Any]]:
    """The conversation so far as a list of turns, for the escalation record."""
    turns: list[dict[str, Any]] = []
    for event in events or []:
        kind = event.get("event")
        if kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            turns.append({"from": "patient", "text": event.get("text") or "", "time": event.get("timestamp"), "intent": intent})
        elif kind == "bot" and event.get("text"):
            turns.append({"from": "assistant", "text": event.get("text"), "time": event.get("timestamp")})
    return turns[-limit:]


def trigger_of(state: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """What triggered the escalation: intent, confidence, matched terms, the screen's classes."""
    message = state.get("latest_message") or {}
    verdict = verdict_of(state)
    intent = message.get("intent") or {}
    trigger = {
        "reason": reason,
        "intent": intent.get("name"),
        "confidence": intent.get("confidence"),
        "model_intent": verdict.model_intent,
        "rerouted": verdict.rerouted,
        "matched_terms": list(verdict.matched_terms),
        "personal": verdict.personal,
        "third_party": verdict.third_party,
        "message": message.get("text"),
        "at": datetime.now(timezone.utc).isoformat(),
    }
    trigger.update({name: getattr(verdict, name) for name in VERDICT_FIELDS if getattr(verdict, name) is not None})
    return trigger


def escalation_input(
    state: Mapping[str, Any],
    reason: str,
    consent: Optional[bool],
    trigger: Optional[dict[str, Any]] = None,
    *,
    contact_given: bool = False,
) -> EscalationInput:
    """The record for ``reason`` from the tracker state (transcript snapshot taken now).

    Contact details go in when the patient consented, or with ``contact_given`` (an
    emergency or adverse event: stored at once with whatever contact the patient already
    typed); ``consent`` is recorded as it is, so the record says whether staff may contact them.
    """
    trigger = trigger or slot(state, "escalation_trigger") or trigger_of(state, reason)
    # WRITE_KEY: the patient message this write answers. The Rasa server and a late action server
    # may both write it (bot/assistant/servers/action_client.py); the store keeps the first.
    trigger = {**trigger, "contact_permission": _permission(consent), WRITE_KEY: message_id_of(state)}
    keep_contact = bool(consent) or contact_given
    contact = {name: (slot(state, name) if keep_contact else None) for name in CONTACT_SLOTS}
    return EscalationInput(
        sender_id=str(state.get("sender_id")),
        channel=state.get("latest_input_channel") or _latest_channel(state) or Channel.unknown.value,
        reason=Reason(reason),
        priority=Priority(default_table().priority[reason]),
        trigger=trigger,
        transcript=transcript(state.get("events") or []),
        consent_given=consent,
        client_key=client_key_of(state),  # the flood guard's per-address cap (bot/core/escalation/flood.py)
        **contact,
    )


def _permission(consent: Optional[bool]) -> str:
    if consent is True:
        return "given"
    if consent is False:
        return "declined"
    return "not given: staff may contact the patient only if they ask to be contacted"


def message_id_of(state: Mapping[str, Any]) -> Optional[str]:
    """Rasa's id of the latest patient message (``None`` when the state has no user event)."""
    for event in reversed(state.get("events") or []):
        if event.get("event") == "user":
            return str(event["message_id"]) if event.get("message_id") else None
    return None


def _latest_channel(state: Mapping[str, Any]) -> Optional[str]:
    for event in reversed(state.get("events") or []):
        if event.get("event") == "user" and event.get("input_channel"):
            return str(event["input_channel"])
    return None


def incident_slots(state: dict[str, Any], reason: str, trigger: dict[str, Any]) -> dict[str, Any]:
    """Slot values after an emergency or adverse event is reported (the action server sets the same).

    ``emergency`` stays set for the rest of the session: no contact form is offered after an
    emergency and every way out repeats the emergency line (:mod:`bot.assistant.nlg`).
    """
    kept = default_table().most_serious([slot(state, "escalation_reason"), reason]) or reason
    values: dict[str, Any] = {"escalation_reason": kept}
    if kept == reason:
        values["escalation_trigger"] = trigger
    if reason == "emergency":
        verdict = verdict_of(state)
        values["emergency"] = True
        values["emergency_info"] = {
            "red_flag_class": verdict.red_flag_class,
            "care": verdict.care,
            "third_party": bool(verdict.third_party),
        }
    return values
