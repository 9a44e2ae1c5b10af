"""Checking the contact details a patient gives in the contact form."""

from __future__ import annotations

import re
from typing import Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email

METHODS = {
    "phone": ("phone", "call", "ring", "text", "sms", "mobile", "cell", "telephone", "whatsapp", "number"),
    "email": ("email", "e-mail", "mail"),
    "chat": ("chat", "here", "this chat", "message", "reply", "online"),
}
NAME = re.compile(r"^[^\W\d_][^\W\d_ '\-.]*(?:[ '\-.]+[^\W\d_]+)*\.?$", re.UNICODE)
CHAT_DETAIL = "this conversation"
INTRODUCTION = re.compile(r"^(my name is|my name's|name is|i'm|im|i am|it's|its|call me|this is)\b", re.IGNORECASE)


def normalise_method(text: str) -> Optional[str]:
    """Map what the patient typed or clicked to ``phone``, ``email`` or ``chat``."""
    lowered = " ".join(text.lower().split())
    for method in ("email", "phone", "chat"):
        if any(re.search(rf"\b{re.escape(word)}\b", lowered) for word in METHODS[method]):
            return method
    return None


def clean_name(text: str) -> Optional[str]:
    """A plausible name (letters, spaces, hyphens, apostrophes), or ``None``."""
    name = " ".join(text.split()).strip(" .,!")
    name = INTRODUCTION.sub("", name).strip(" .,!")
    if not (1 <= len(name) <= 80) or not NAME.match(name):
        return None
    return name


def clean_phone(text: str, default_region: str) -> Optional[str]:
    """A valid phone number in E.164 form, or ``None``."""
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_email(text: str) -> Optional[str]:
    """A syntactically valid email address (normalised), or ``None``."""
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None
