"""What the channels themselves say to a patient, when Rasa does not answer.

An empty message, a failure to process one (a true message with the clinic's phone number,
never silence), a message over the rate limit (:mod:`bot.assistant.channels.limits`), a browser posting
into a chat that is not its own, and a message in another language: in that language where
there is a catalogue (:mod:`bot.core.safety.languages`), else in English.
"""

from __future__ import annotations

from bot.core.clinic import Clinic
from bot.core.safety.languages import LanguageNet, default_net


def empty_reply() -> str:
    """What the assistant says to an empty message."""
    return "I didn't receive any text. What would you like to know about dry needling?"


def language_reply(net: LanguageNet, clinic: Clinic, language: str, key: str) -> str:
    """Reply ``key`` (``other_language``, ``emergency``, ``emergency_third_party``) in ``language``, else in English."""
    values = {"clinic_name": clinic.name, "clinic_phone": clinic.phone, "emergency_number": clinic.emergency_number}
    return net.reply(language, key, values) or net.reply("en", key, values) or ""


def other_language_reply(clinic: Clinic, language: str = "en") -> str:
    """What the assistant says to a message in another language (in that language where it can)."""
    return language_reply(default_net(), clinic, language, "other_language")


def failure_reply(clinic: Clinic) -> str:
    """What the assistant says when it could not process a message."""
    return (
        "Sorry, I'm having a technical problem and can't answer right now. "
        f"Please try again in a few minutes, or call {clinic.name} on {clinic.phone}. "
        f"If you feel unwell or it's an emergency, call {clinic.emergency_number}."
    )


def rate_limited_reply(clinic: Clinic) -> str:
    """What the assistant says to a message over the rate limit (:mod:`bot.assistant.channels.limits`)."""
    return (
        "You're sending messages faster than I can answer, so I didn't read that one. "
        "Please wait a minute and send it again. "
        f"If you need help now, call {clinic.name} on {clinic.phone}. "
        f"If you feel unwell or it's an emergency, call {clinic.emergency_number}."
    )


def session_refused_reply() -> str:
    """What a browser hears when it posts into a conversation that is not its own."""
    return (
        "I couldn't match that message to this chat, so I didn't read it. "
        "Please reload the page and send it again."
    )
