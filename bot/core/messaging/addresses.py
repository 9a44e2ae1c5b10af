"""Patient addresses on the messaging channel: ``+447700900123`` (SMS) or ``whatsapp:+447700900123``.

An address is personal data: it is kept in the store (to reply, and to honour an
opt-out) and shown to staff, never in a log line, a URL or a Rasa conversation id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from bot.core.channel_names import Channel

SMS = Channel.sms.value
WHATSAPP = Channel.whatsapp.value
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_ADDRESS_CHARS = 64


@dataclass(frozen=True)
class Address:
    """Where a patient writes from: the channel kind and the E.164 number."""

    kind: str
    number: str

    @property
    def value(self) -> str:
        """The address as Twilio writes it (``whatsapp:`` prefix for WhatsApp)."""
        return f"whatsapp:{self.number}" if self.kind == WHATSAPP else self.number

    @property
    def ending(self) -> str:
        """The last four digits, to remind a patient which number without writing it out."""
        return self.number[-4:]


def parse_address(raw: Optional[str]) -> Optional[Address]:
    """Twilio's ``From``/``To`` value as an :class:`Address`; ``None`` if it is not a phone number."""
    if not isinstance(raw, str) or len(raw) > MAX_ADDRESS_CHARS:
        return None
    value = raw.strip()
    kind = SMS
    if value.lower().startswith("whatsapp:"):
        kind, value = WHATSAPP, value[len("whatsapp:"):].strip()
    value = value.replace(" ", "")
    if not value.startswith("+") and value.isdigit():
        value = "+" + value  # Twilio sends E.164; a missing "+" is the only slack allowed
    return Address(kind, value) if _E164.match(value) else None
