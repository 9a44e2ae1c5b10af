"""Response generator that fills the clinic's own facts into every response.

Configured in the endpoints file as ``nlg: {type: bot.assistant.nlg.ClinicNLG}``. It runs
inside the Rasa server, so the placeholders ({clinic_phone}, {booking_url}, ...)
are filled even when the action server is unreachable.

It also chooses what a patient reporting a problem after treatment reads, in
the Rasa server, before any custom action runs (issues 20 and 21):

* ``utter_adverse_event`` becomes the text for the safety screen's verdict on the
  latest message (``latest_message["safety"]``): for an emergency,
  ``utter_emergency_<red_flag_class>`` (``utter_red_flag_urgent`` when the verdict
  names no class); otherwise ``utter_adverse_<adverse_class>`` (the neutral
  ``utter_adverse_event`` when it names none). When the writer reports someone
  else's symptoms (``third_party``), the ``..._other`` wording is used if there is one.
* ``{call_now}`` and ``{call_now_short}`` say what to do now: 999 or A&E when the
  verdict's ``care`` is ``"999"``, NHS 111 when it is ``"111"``, "for them" for
  someone else.
* After an emergency (slot ``emergency``), every way out of the conversation
  (declining, goodbye, stop, thanks) opens with the emergency line again.
* A curated answer that ends with an offer ("Would you like to know ...?",
  ``metadata.kb.follow_up``) gets the buttons of ``utter_follow_up_choices`` (Yes/No; none
  in its SMS variant), except while a form is open, where a yes answers the form. (Read
  from the tracker: Rasa's agent builds this generator before it loads the domain.)
* A curated FAQ answer carries its one-text-message version (``metadata.kb.short``), filled
  in for the clinic like the full text, under :data:`SHORT_TEXT`: the web widget shows it
  first on a phone (:mod:`bot.assistant.channels.socketio`). The ``text`` is unchanged, and
  output channels that do not look for the key (REST) ignore it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Text

from rasa.core.nlg import TemplatedNaturalLanguageGenerator, interpolator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.core import process
from bot.core.clinic import Clinic, load_clinic
from bot.core.knowledge.catalog import FAQ_PREFIX
from bot.core.safety.verdict import SafetyVerdict


logger = logging.getLogger(__name__)

#: The response the rules run for a problem after treatment; the verdict picks its text.
ADVERSE_EVENT = "utter_adverse_event"
GENERAL_EMERGENCY = "utter_red_flag_urgent"
REMINDER = "utter_emergency_reminder"
OTHER_SUFFIX = "_other"
#: Ways out of the conversation: after an emergency each one repeats the emergency line first.
EXIT_RESPONSES = frozenset(
    {"utter_goodbye", "utter_handoff_declined", "utter_contact_stopped", "utter_anything_else", "utter_thank"}
)
#: What to do now when a verdict gives no ``care``: the class's usual level, else 999 (the safe default).
USUAL_CARE = {
    "infection": "111",
    "nerve_injury": "111",
    "retained_needle": "111",
}
LIFE_THREATENING = "999"
#: The response whose buttons go under a curated answer's follow-up offer (domain.yml).
FOLLOW_UP_CHOICES = "utter_follow_up_choices"
#: The message key that carries a curated FAQ answer's short version, filled in.
SHORT_TEXT = "short_text"


def verdict_of(tracker: DialogueStateTracker) -> SafetyVerdict:
    """The safety screen's verdict on the latest message (empty when there is none)."""
    return SafetyVerdict.from_parse_data(tracker.latest_message.parse_data if tracker.latest_message else None)


def care_of(about: Any) -> str:
    """``"999"`` or ``"111"``: the level of care of a verdict (or of the slot ``emergency_info``),
    else its class's usual one."""
    if isinstance(about, SafetyVerdict):
        care, red_flag_class = about.care, about.red_flag_class
    else:
        care, red_flag_class = about.get("care"), about.get("red_flag_class")
    if care in ("999", "111"):
        return str(care)
    return USUAL_CARE.get(str(red_flag_class), LIFE_THREATENING)


def call_now(care: str, third_party: bool, emergency_number: str) -> Dict[str, str]:
    """The "what to do now" phrases for a level of care, spoken to the writer."""
    if care == "111":
        if third_party:
            return {
                "call_now": f"call NHS 111 for them now, or {emergency_number} if they get worse",
                "call_now_short": "call NHS 111 for them now",
            }
        return {
            "call_now": f"call NHS 111 now, or {emergency_number} if it gets worse",
            "call_now_short": "call NHS 111 now",
        }
    if third_party:
        return {
            "call_now": f"call {emergency_number} for them now, or take them to A&E",
            "call_now_short": f"call {emergency_number} for them now",
        }
    return {
        "call_now": f"call {emergency_number} now or go to A&E",
        "call_now_short": f"call {emergency_number} now",
    }


def emergency_candidates(verdict: SafetyVerdict) -> list[str]:
    """The emergency responses for a verdict, best first.

    The class's own text when the verdict's level of care is the class's usual one;
    otherwise ``utter_emergency_<class>_<care>`` if one is written, and for a "111"
    verdict the class's own (999) text next: saying 999 when 111 would do is the safe
    mistake. Last, the general 999 text.
    """
    kind = verdict.red_flag_class
    names: list[str] = []
    if kind:
        care = care_of(verdict)
        if care == USUAL_CARE.get(str(kind), LIFE_THREATENING):
            names.append(f"utter_emergency_{kind}")
        else:
            names.append(f"utter_emergency_{kind}_{care}")
            if care != LIFE_THREATENING:
                names.append(f"utter_emergency_{kind}")
    names.append(GENERAL_EMERGENCY)
    return names


def localised(responses: Mapping[str, Any], name: str, language: Optional[str]) -> str:
    """The response to use for ``name`` in ``language``.

    The one place a translation would be looked up (``<name>__<language>``); the
    assistant answers in English today, and an unknown language falls back to it.
    """
    if language and language != "en" and f"{name}__{language}" in responses:
        return f"{name}__{language}"
    return name


class ClinicNLG(TemplatedNaturalLanguageGenerator):
    """Templated responses with the clinic configuration as template variables."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        domain: Optional[Domain] = None,
        clinic: Optional[Clinic] = None,
    ) -> None:
        """Load the clinic configuration named in the endpoint or the environment."""
        domain = domain or Domain.empty()
        super().__init__(domain.responses)
        if clinic is None:
            path = (endpoint_config.kwargs.get("clinic_config") if endpoint_config else None) or str(
                process.settings().clinic_config
            )
            clinic = load_clinic(Path(path))
        self.clinic = clinic
        self._clinic_values = clinic.template_values()

    async def generate(  # type: ignore[override]
        self, utter_action: Text, tracker: DialogueStateTracker, output_channel: Text, **kwargs: Any
    ) -> Optional[Dict[Text, Any]]:
        """The response, with the adverse-event text chosen by the verdict and the emergency line on every exit."""
        filled = tracker.current_slot_values()
        verdict = verdict_of(tracker)
        name, about = utter_action, filled.get("emergency_info") or {}
        third_party = bool(about.get("third_party"))
        if utter_action == ADVERSE_EVENT:
            name, third_party = self.adverse_event_response(verdict)
            about = verdict
        phrases = call_now(care_of(about), third_party, self.clinic.emergency_number)
        message = self.generate_from_slots(name, filled, output_channel, **{**phrases, **kwargs})
        if message is not None and utter_action in EXIT_RESPONSES and filled.get("emergency"):
            reminder = self.generate_from_slots(REMINDER, filled, output_channel, **phrases)
            if reminder and reminder.get("text"):
                message["text"] = f"{reminder['text']}\n\n{message.get('text') or ''}".strip()
        if message is not None and self._offers_follow_up(name) and not tracker.active_loop_name:
            choices = self.generate_from_slots(FOLLOW_UP_CHOICES, filled, output_channel) or {}
            if choices.get("buttons") and not message.get("buttons"):
                message["buttons"] = choices["buttons"]
        if message is not None and name.startswith(FAQ_PREFIX):
            short = self._short_text(message, filled, {**phrases, **kwargs})
            if short:
                message[SHORT_TEXT] = short
        return message

    def _short_text(self, message: Dict[Text, Any], filled: Dict[Text, Any], kwargs: Dict[Text, Any]) -> str:
        """The chosen answer's short version (``metadata.kb.short``), filled like its text; "" if none."""
        short = ((message.get("metadata") or {}).get("kb") or {}).get("short")
        if not isinstance(short, str) or not short.strip():
            return ""
        filled_short = interpolator.interpolate(" ".join(short.split()), self._response_variables(filled, kwargs))
        return filled_short if isinstance(filled_short, str) else ""

    def _offers_follow_up(self, name: str) -> bool:
        """Whether a curated answer ends with an offer of another answer (``metadata.kb.follow_up``)."""
        return any(((variant.get("metadata") or {}).get("kb") or {}).get("follow_up") for variant in self.responses.get(name) or [])

    def adverse_event_response(self, verdict: SafetyVerdict) -> tuple[str, bool]:
        """The response for a problem after treatment, and whether it speaks of someone else."""
        third_party = bool(verdict.third_party)
        if verdict.emergency:
            name = self._first_written(emergency_candidates(verdict))
        else:
            kind = verdict.adverse_class
            name = self._first_written([f"utter_adverse_{kind}"] if kind else []) or ADVERSE_EVENT
        if third_party and name + OTHER_SUFFIX in self.responses:
            name += OTHER_SUFFIX
        return localised(self.responses, name, verdict.language), third_party

    def _first_written(self, names: list[str]) -> str:
        return next((name for name in names if name in self.responses), "")

    def _response_variables(  # type: ignore[override]
        self, filled_slots: Optional[Dict[Text, Any]], kwargs: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        """Clinic facts, then slot values, then the caller's keyword arguments."""
        variables: Dict[Text, Any] = dict(self._clinic_values)
        variables.update({k: v for k, v in (filled_slots or {}).items() if v is not None})
        variables.update(kwargs)
        return variables
