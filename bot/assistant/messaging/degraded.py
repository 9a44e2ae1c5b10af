"""Answering a patient's text when the store cannot take it: in the webhook's own TwiML answer.

Normally replies are queued in the store and sent by the outbox. When the store is
down or slow the text is spooled (:mod:`bot.core.messaging.inbound_spool`) and the patient
is answered at once in the webhook's answer, which Twilio sends itself:

* a red flag (the safety screen's ``safety.reason`` is ``emergency``) gets the
  assistant's urgent guidance first, in the words the Rasa server's response generator
  gives that verdict (its class and level of care; the general red-flag text if that
  fails), then the words the assistant uses when it could not alert the team, so the
  patient calls instead of waiting;
* any other text is told that it was kept and will be answered, with the clinic's
  phone number and the emergency number;
* HELP gets the usual help text; STOP and START get nothing now (the replay records
  them, and STOP's one confirmation goes out then).

Without the store a number that opted out cannot be told apart: it gets the same
answer (the patient has just written to the clinic), and the replay then reads nothing
from it, as for any opted-out number.

The same TwiML carries the assistant's replies when the store fails after the
assistant answered (the replies could not be queued).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import escape

import yaml

from bot.core.clinic import Clinic
from bot.core.settings import REPO_ROOT

DOMAIN = REPO_ROOT / "domain.yml"
NOT_FLAGGED = "utter_emergency_not_flagged"


def response_text(name: str, clinic: Clinic, path: Path = DOMAIN) -> str:
    """The first text of a domain response, filled in for the clinic."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return " ".join(str(data["responses"][name][0]["text"]).split()).format_map(clinic.template_values())


def kept_for_later(clinic: Clinic) -> str:
    """What a patient hears when their text was kept to be answered once the store is back."""
    return (
        "Sorry, I'm having a technical problem, so my answer will take a little longer. "
        "I've kept your message and will reply as soon as I can. "
        f"If you need help now, call {clinic.name} on {clinic.phone}. "
        f"If you feel unwell or it's an emergency, call {clinic.emergency_number}."
    )


def red_flag_replies(clinic: Clinic, urgent_guidance: str) -> list[str]:
    """Urgent guidance first, then "I couldn't alert the team, call us" (the assistant's own words)."""
    return [urgent_guidance, response_text(NOT_FLAGGED, clinic)]


def twiml_messages(texts: Iterable[str]) -> str:
    """A TwiML answer that sends each text as its own message (escaped; Twilio splits long ones)."""
    body = "".join(f"<Message>{escape(text)}</Message>" for text in texts if text.strip())
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
