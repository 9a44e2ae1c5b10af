"""Why a handoff request was refused: plain domain errors, each with a sentence for staff.

Nothing here knows about HTTP: :mod:`bot.dashboard.web.handoff_routes` maps each class to a
status and a wire code in one table. Subclasses narrow a refusal (``EmptyLine`` and
``TooLong`` are both an ``InvalidMessage``; ``NotWebChat`` and ``NotSms`` are both a
``WrongChannel``), so a caller may catch the family or the case.
"""

from __future__ import annotations


class HandoffError(Exception):
    """A handoff request refused, with a message staff can act on (never patient text)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EscalationNotFound(HandoffError):
    """No such escalation, or the assistant's server no longer has its conversation."""


class WrongChannel(HandoffError):
    """The conversation did not come in by the channel asked for."""


class NotWebChat(WrongChannel):
    """Only website-chat conversations can be taken over in the chat."""


class NotSms(WrongChannel):
    """Only SMS and WhatsApp conversations (with a number on record) can be texted."""


class HeldByColleague(HandoffError):
    """Someone (a colleague, or you already) holds the conversation."""


class NotHolding(HandoffError):
    """The request needs a takeover this staff member holds, and there is none."""


class InvalidMessage(HandoffError):
    """What staff wrote cannot be sent."""


class EmptyLine(InvalidMessage):
    """Nothing to send (blank, or not text at all)."""


class TooLong(InvalidMessage):
    """Over the length limit (:data:`bot.dashboard.staff.handoff.lines.MAX_MESSAGE_CHARS`)."""


class ChatServerUnavailable(HandoffError):
    """The assistant's server did not answer, or refused: nothing was done; try again."""


class Refused(HandoffError):
    """A channel rule forbids the line; ``reason`` is the word the audit log records."""

    reason = "refused"


class OptedOut(Refused):
    """The patient's number texted STOP: nothing is sent to it, staff replies included."""

    reason = "opted_out"


class WindowClosed(Refused):
    """Free text on WhatsApp more than 24 hours after the patient's last message."""

    reason = "whatsapp_window_closed"


class NoTemplate(Refused):
    """The approved WhatsApp template was asked for and none is configured (or it is not WhatsApp)."""

    reason = "no_template"
