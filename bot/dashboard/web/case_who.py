"""Who the patient is, for the top of the conversation view: names, phone numbers, emails.

Gathered from what the patient gave with consent: the contact form's answers in the
conversation (every run of the form that ended with a yes, :meth:`TrackerReader.contact_answers`),
the case's own stored contact when consent was given, and, for a text conversation, the
number the patient texts from (``SmsContact``, never in the tracker). Each phone number gets
a ``tel:`` link and each email a ``mailto:`` link, built here from the cleaned value only
(digits and ``+`` for a phone; an address of the plain ``local@domain`` shape for an email:
anything else is shown without a link). Everything is patient data: the template escapes it,
and nothing here is logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional
from urllib.parse import quote

from bot.core.messaging.addresses import WHATSAPP, parse_address
from bot.dashboard.staff.conversation import ContactAnswer

#: A plain email address (the contact form cleaned it; this only decides whether to link it).
EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
PHONE_CHARS = re.compile(r"[^0-9+]")


@dataclass(frozen=True)
class Reach:
    """One way to reach the patient: what is shown, the link, and where it came from."""

    text: str
    href: str = ""
    note: str = ""


@dataclass
class Who:
    """The who block: names, phone numbers and emails, each once."""

    names: list[str] = field(default_factory=list)
    phones: list[Reach] = field(default_factory=list)
    emails: list[Reach] = field(default_factory=list)
    #: The patient asked for a reply in the chat itself.
    chat_reply: bool = False

    @property
    def empty(self) -> bool:
        return not (self.names or self.phones or self.emails or self.chat_reply)


def tel_href(number: str) -> str:
    """``tel:`` link of a phone number (digits and a leading ``+`` only); "" when none remain."""
    digits = PHONE_CHARS.sub("", number)
    digits = digits[:1] + digits[1:].replace("+", "")
    return f"tel:{digits}" if sum(char.isdigit() for char in digits) >= 3 else ""


def mailto_href(address: str) -> str:
    """``mailto:`` link of a plain email address; "" for anything else."""
    return f"mailto:{quote(address, safe='@.+-_')}" if EMAIL.match(address) else ""


def _add_name(who: Who, name: Optional[str]) -> None:
    name = (name or "").strip()
    if name and name.casefold() not in {known.casefold() for known in who.names}:
        who.names.append(name)


def _add_detail(who: Who, method: Optional[str], detail: Optional[str], note: str = "") -> None:
    detail = (detail or "").strip()
    if method == "chat":
        who.chat_reply = True
        return
    if not detail:
        return
    if method == "email" or (method is None and "@" in detail):
        if detail.casefold() not in {known.text.casefold() for known in who.emails}:
            who.emails.append(Reach(detail, mailto_href(detail), note))
        return
    href = tel_href(detail)
    if all(known.href != href or not href for known in who.phones) and detail not in {k.text for k in who.phones}:
        who.phones.append(Reach(detail, href, note))


def gather(
    answers: Iterable[ContactAnswer],
    *,
    case_name: Optional[str],
    case_method: Optional[str],
    case_detail: Optional[str],
    case_consent: Optional[bool],
    sms_address: Optional[str],
) -> Who:
    """The who block from the form's consented answers, the case's contact and the texting number."""
    who = Who()
    if case_consent:
        _add_name(who, case_name)
        _add_detail(who, case_method, case_detail)
    for answer in answers:
        _add_name(who, answer.name)
        _add_detail(who, answer.method, answer.detail)
    address = parse_address(sms_address) if sms_address else None
    if address is not None:
        note = "texts from this number by WhatsApp" if address.kind == WHATSAPP else "texts from this number"
        known = [reach for reach in who.phones if reach.href == tel_href(address.number)]
        if known:
            who.phones[who.phones.index(known[0])] = Reach(known[0].text, known[0].href, note)
        else:
            who.phones.append(Reach(address.number, tel_href(address.number), note))
    return who
