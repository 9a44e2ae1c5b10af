"""WhatsApp's customer-service window: free text only within 24 hours of the patient's last message.

Outside the window WhatsApp delivers only pre-approved templates (Twilio answers
error 63016), so the channel refuses free text there with a clear explanation and
offers the approved template when one is configured (``TWILIO_WHATSAPP_TEMPLATE_SID``).
SMS has no window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

WHATSAPP_WINDOW = timedelta(hours=24)
#: Twilio's error code for free text sent outside the window.
OUTSIDE_WINDOW_ERROR = "63016"


def window_closes_at(kind: str, last_inbound_at: Optional[datetime]) -> Optional[datetime]:
    """When free text stops being allowed (``None``: no window applies, or no patient message yet)."""
    if kind != "whatsapp" or last_inbound_at is None:
        return None
    return last_inbound_at + WHATSAPP_WINDOW


def free_text_allowed(kind: str, last_inbound_at: Optional[datetime], now: datetime) -> bool:
    """Whether a free-text message may go to this patient now."""
    if kind != "whatsapp":
        return True
    closes = window_closes_at(kind, last_inbound_at)
    return closes is not None and now < closes
