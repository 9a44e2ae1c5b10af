"""The names of the channels a conversation comes in by, as Rasa and the escalation store record them.

A leaf module (standard library only): the Rasa server's channels name themselves with these,
the escalation record keeps the latest input channel, and the staff dashboard filters and labels
cases by them. The values are the wire names: Rasa's webhook URLs (``/webhooks/rest/``,
``/webhooks/staff_bridge/``), the ``channel: clinic_sms`` responses of the domain and the
``channel`` column of stored escalations; they never change.
"""

from __future__ import annotations

import enum


class Channel(str, enum.Enum):
    """Where a conversation comes in (or, for ``clinic_sms``, which responses its replies use)."""

    #: The website chat widget (Rasa's socket.io protocol).
    socketio = "socketio"
    #: Rasa's REST protocol.
    rest = "rest"
    #: The Twilio SMS/WhatsApp input channel (``/webhooks/twilio/``) and its replies' channel name.
    clinic_sms = "clinic_sms"
    #: A conversation that came in by text message (the input channel of its messages).
    sms = "sms"
    #: A conversation that came in by WhatsApp.
    whatsapp = "whatsapp"
    #: The internal channel staff act on web-chat conversations through.
    staff_bridge = "staff_bridge"
    #: An escalation whose channel could not be told.
    unknown = "unknown"


#: The web chat: staff can take it over and reply in it.
WEB_CHAT = Channel.socketio.value
#: Conversations by text message: staff reply by text.
MESSAGING = frozenset({Channel.sms.value, Channel.whatsapp.value})
