"""Texts from the clinic's own on-call contacts: staff acknowledging an alert, never a patient conversation.

The on-call route (:mod:`bot.core.escalation.on_call`) texts the contacts in ``clinic.yml``
(``on_call``) from the clinic's Twilio number when an urgent case is unopened; a contact
who texts back ("ok calling her now") writes to the same webhook as patients. The SMS
channel (:mod:`bot.assistant.channels.twilio_sms`) asks :func:`on_call_contact` first:
a text from an on-call contact's number (E.164, the channel's own normalisation) is not
read by the assistant, gets no disclosure, no safety screen and no FAQ answer.

:meth:`OnCallReplies.acknowledge` records it instead, in one transaction: an
``on_call_acknowledged`` audit entry (actor: the contact's name; never their text) on every
urgent case a round alerted them about that is not resolved (which stops that case's
re-alert rounds, as opening its page does), and one short reply saying so, or that
nothing is open (a contact who was never alerted, or whose cases are closed). STOP,
START and HELP from a contact are the channel's as for anyone (Twilio honours STOP on the
number whatever we do, so the opt-out is recorded and the on-call texts stop with it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic, OnCallContact
from bot.core.escalation import on_call
from bot.core.messaging import store
from bot.core.store.models import SmsContact, utcnow

logger = logging.getLogger(__name__)

#: The SMS outbox origin of the automatic reply to an on-call contact.
REPLY_ORIGIN = "on_call_reply"
#: At most this many replies a minute to one contact (a phone's own auto-reply must not start a loop).
REPLIES_PER_MINUTE = 3
REPLY_SCOPE = "on_call_reply"


def on_call_contact(clinic: Clinic, number: str) -> Optional[OnCallContact]:
    """The on-call contact texting from ``number`` (E.164), ``None`` for anyone else."""
    return on_call.contact_for_number(clinic.on_call_plan, number)


def acknowledged_text(name: str, cases: list[str]) -> str:
    """The reply when the text acknowledged open cases (their short references only, never patient data)."""
    refs = ", ".join(on_call.reference(case) for case in cases)
    which = f"case {refs} is" if len(cases) == 1 else f"cases {refs} are"
    return (f"Thanks, noted: {which} marked as acknowledged by {name} on the dashboard. "
            "Phone the patient from the number in the case.")


def nothing_open_text() -> str:
    """The reply when no open urgent case alerted this contact."""
    return ("Thanks. There is no open urgent case you were alerted about; nothing to acknowledge. "
            "The dashboard shows new cases.")


@dataclass(frozen=True)
class Acknowledgement:
    """What one text from an on-call contact recorded: the cases it acknowledged, and whether a reply was queued."""

    cases: tuple[str, ...]
    replied: bool


class OnCallReplies:
    """Records an on-call contact's text as an acknowledgement and queues the one reply."""

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions

    async def acknowledge(
        self, contact_id: int, contact: OnCallContact, via: str, now: Optional[datetime] = None
    ) -> Acknowledgement:
        """Audit the acknowledgement and queue the reply for the messaging contact ``contact_id``."""
        now = now or utcnow()
        async with self.sessions() as session:
            async with session.begin():
                row = await session.get(SmsContact, contact_id, with_for_update=True)
                cases = await on_call.acknowledge(session, contact, now, via, sender_id=row.sender_id)
                sent = await store.bump(session, REPLY_SCOPE, row.sender_id, store.minute_window(now), now)
                replied = sent <= REPLIES_PER_MINUTE
                if replied:
                    text = acknowledged_text(contact.name, cases) if cases else nothing_open_text()
                    await store.queue(session, row, [text], now, origin=REPLY_ORIGIN)
        logger.info("an on-call contact texted back: %d open urgent case(s) acknowledged%s",
                    len(cases), "" if replied else " (no reply: too many texts this minute)")
        return Acknowledgement(tuple(cases), replied)
