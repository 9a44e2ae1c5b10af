"""The clinic's own facts (name, phone, hours, prices), loaded from one YAML file.

Answers in the knowledge base never hold these values: they use placeholders
such as ``{clinic_phone}`` that :meth:`Clinic.template_values` fills in.

The opening hours also drive the one promise the assistant makes about time: when staff
will be in touch. The clinic is shut on the weekdays without hours, on public (bank)
holidays from the maintained ``holidays`` library (England and Wales unless
``bank_holidays`` says otherwise) and on the dates listed in ``closures``. The promise is
counted in *open* hours (:meth:`Clinic.reply_by`): "within about 2 hours" said at 16:50 on
a Friday means 10 minutes on Friday and 1 h 50 on the next open day, and the sentence
says so. Out of hours it says when staff will see the message and where to get help
meanwhile.

``on_call`` names who receives urgent alerts by SMS and/or email, in order (:class:`OnCall`,
sent and re-sent by :mod:`bot.core.escalation.on_call`); without it nobody is on call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Optional
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
import yaml

logger = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))
DEFAULT_EMERGENCY_NUMBER = "your local emergency number (999 in the UK, 911 in the US, 112 in the EU)"
DEFAULT_URGENT_CARE = "NHS 111 (call 111 or go to 111.nhs.uk)"
# England and Wales share their bank holidays; the library names the subdivision ENG.
DEFAULT_BANK_HOLIDAYS = "GB-ENG"
# How far ahead the next opening is looked for (a long closure plus the holidays around it).
LOOKAHEAD_DAYS = 400
#: Minutes before an urgent case nobody has opened is alerted again, one contact wider.
DEFAULT_REALERT_MINUTES = 10.0
#: Alert rounds after the list is exhausted (each one to every contact) before the alerts stop.
DEFAULT_EXTRA_ROUNDS = 2


class ClinicConfigError(ValueError):
    """The clinic configuration file is missing a field or holds a bad value."""


def _day(value: object) -> date:
    """A closure date written as ``2026-12-24`` (YAML date or quoted string)."""
    if isinstance(value, datetime):
        raise ValueError(f"closure {value} must be a date, not a date and time")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"closure {value!r} is not a date like 2026-12-24") from None


@dataclass(frozen=True)
class OnCallContact:
    """One person who receives urgent alerts: a phone (E.164) for SMS, an email address, or both."""

    name: str
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class OnCall:
    """Who receives urgent alerts, in order, and when an unopened case is alerted again.

    Round 0 alerts the first contact; each round after ``realert_minutes`` without anyone
    opening the case adds the next contact (the earlier ones are alerted again), until
    ``max_rounds`` rounds were sent.
    """

    contacts: tuple[OnCallContact, ...] = ()
    realert_minutes: float = DEFAULT_REALERT_MINUTES
    max_rounds: int = 0

    @property
    def realert(self) -> timedelta:
        return timedelta(minutes=self.realert_minutes)

    @property
    def rounds(self) -> int:
        """How many alert rounds a case gets at most."""
        return self.max_rounds or len(self.contacts) + DEFAULT_EXTRA_ROUNDS


def _on_call_phone(value: object, region: str) -> str:
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ValueError(f"on_call phone {value!r} is not a phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_on_call(raw: object, region: str) -> OnCall:
    """The ``on_call`` section: ``{contacts: [{name, phone, email}], realert_minutes, max_rounds}``,
    or just the list of contacts. Raises :class:`ValueError` for a bad entry."""
    if not raw:
        return OnCall()
    if isinstance(raw, list):
        raw = {"contacts": raw}
    if not isinstance(raw, dict):
        raise ValueError("on_call must be a list of contacts or {contacts: [...], realert_minutes: ...}")
    unknown = set(raw) - {"contacts", "realert_minutes", "max_rounds"}
    if unknown:
        raise ValueError(f"on_call: unknown field(s) {', '.join(sorted(unknown))}")
    contacts = []
    for entry in raw.get("contacts") or ():
        if not isinstance(entry, dict) or set(entry) - {"name", "phone", "email"}:
            raise ValueError(f"on_call contact {entry!r} must be {{name, phone and/or email}}")
        name = str(entry.get("name") or "").strip()
        phone = _on_call_phone(entry["phone"], region) if entry.get("phone") else ""
        email = str(entry.get("email") or "").strip()
        if email and "@" not in email:
            raise ValueError(f"on_call email {email!r} is not an email address")
        if not name or not (phone or email):
            raise ValueError(f"on_call contact {entry!r} needs a name and a phone or an email")
        contacts.append(OnCallContact(name, phone, email))
    realert = raw.get("realert_minutes", DEFAULT_REALERT_MINUTES)
    rounds = raw.get("max_rounds", 0) or 0
    if isinstance(realert, bool) or not isinstance(realert, (int, float)) or realert <= 0:
        raise ValueError(f"on_call realert_minutes {realert!r} must be a positive number")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"on_call max_rounds {rounds!r} must be a whole number")
    return OnCall(tuple(contacts), float(realert), rounds)


@dataclass(frozen=True)
class Clinic:
    """Facts about the clinic that answers and escalation messages refer to."""

    name: str
    phone: str
    booking_url: str
    email: str = ""
    address: str = ""
    emergency_number: str = DEFAULT_EMERGENCY_NUMBER
    urgent_care: str = DEFAULT_URGENT_CARE
    price_info: str = ""
    timezone: str = "UTC"
    phone_region: str = "GB"
    opening_hours: dict = field(default_factory=dict)
    bank_holidays: str = DEFAULT_BANK_HOLIDAYS
    closures: list = field(default_factory=list)
    follow_up_within_hours: float = 4
    on_call: Any = None

    @cached_property
    def on_call_plan(self) -> OnCall:
        """Who receives urgent alerts, in order (:class:`OnCall`; no contacts when not configured)."""
        return parse_on_call(self.on_call, self.phone_region)

    @property
    def tz(self) -> ZoneInfo:
        """The clinic's time zone."""
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> Optional[holidays.HolidayBase]:
        code = (self.bank_holidays or "").strip()
        if not code or code.lower() == "none":
            return None
        country, _, subdivision = code.partition("-")
        return holidays.country_holidays(country.upper(), subdiv=subdivision.upper() or None)

    @cached_property
    def _closed_days(self) -> frozenset[date]:
        days: set[date] = set()
        for entry in self.closures or ():
            if isinstance(entry, dict):
                unknown = set(entry) - {"from", "to", "reason"}
                if unknown or "from" not in entry:
                    raise ValueError(f"closure {entry} must be a date or {{from: ..., to: ..., reason: ...}}")
                first, last = _day(entry["from"]), _day(entry.get("to", entry["from"]))
                if last < first:
                    raise ValueError(f"closure {entry} ends before it starts")
                days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
            else:
                days.add(_day(entry))
        return frozenset(days)

    def is_bank_holiday(self, day: date) -> bool:
        """Whether ``day`` is a public holiday where the clinic is (``bank_holidays``)."""
        return self._holidays is not None and day in self._holidays

    def is_closure(self, day: date) -> bool:
        """Whether the clinic listed ``day`` among its ``closures``."""
        return day in self._closed_days

    def hours_text(self) -> str:
        """Opening hours in one readable line, e.g. ``Monday–Thursday 08:00–19:00; ...``."""
        groups: list[tuple[list[str], tuple[str, str]]] = []
        for day in DAYS:
            span = self.opening_hours.get(day)
            if not span:
                continue
            span = (span[0], span[1])
            if groups and groups[-1][1] == span and DAYS.index(groups[-1][0][-1]) == DAYS.index(day) - 1:
                groups[-1][0].append(day)
            else:
                groups.append(([day], span))
        parts = []
        for days, (start, end) in groups:
            label = DAY_NAMES[days[0]] if len(days) == 1 else f"{DAY_NAMES[days[0]]}–{DAY_NAMES[days[-1]]}"
            parts.append(f"{label} {start}–{end}")
        if not parts:
            return "please call us for our opening hours"
        if self._holidays is not None:
            parts.append("closed on bank holidays")
        return "; ".join(parts)

    def _span(self, day: date) -> Optional[tuple[time, time]]:
        """Opening and closing time on ``day``; ``None`` on a closed day."""
        span = self.opening_hours.get(DAYS[day.weekday()])
        if not span or self.is_bank_holiday(day) or self.is_closure(day):
            return None
        return time.fromisoformat(span[0]), time.fromisoformat(span[1])

    def _open_periods(self, local: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open periods from ``local`` (clinic time) on, the current one cut at ``local``."""
        for offset in range(LOOKAHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            span = self._span(day)
            if span is None:
                continue
            start, end = (datetime.combine(day, moment, tzinfo=self.tz) for moment in span)
            if end > local:
                yield max(start, local), end

    def is_open(self, when: datetime) -> bool:
        """Whether the clinic is open at ``when`` (any aware datetime)."""
        local = when.astimezone(self.tz)
        span = self._span(local.date())
        return bool(span and span[0] <= local.time() < span[1])

    def next_opening(self, when: datetime) -> Optional[datetime]:
        """The next moment the clinic opens after ``when`` (``when`` itself if open), in clinic time."""
        local = when.astimezone(self.tz)
        return next((start for start, _ in self._open_periods(local)), None)

    def opening_text(self, when: datetime) -> Optional[str]:
        """The next opening after ``when`` as a patient reads it: ``08:00 tomorrow``, ``08:00 on Monday``.

        ``None`` when no opening is known (no hours configured, or none within the look-ahead).
        """
        opening = self.next_opening(when)
        return None if opening is None else self._moment(opening, when.astimezone(self.tz))

    def reply_by(self, when: datetime) -> Optional[datetime]:
        """When staff should have replied to a message left at ``when``, in clinic time.

        ``follow_up_within_hours`` counted in open hours only: time when the clinic is shut
        (nights, weekends, bank holidays, closures) does not count. ``None`` without hours.
        """
        remaining = timedelta(hours=self.follow_up_within_hours)
        for start, end in self._open_periods(when.astimezone(self.tz)):
            if start + remaining <= end:
                return start + remaining
            remaining -= end - start
        return None

    def follow_up_text(self, when: datetime) -> str:
        """A sentence on when staff will be in touch that holds in the clinic's real hours."""
        local = when.astimezone(self.tz)
        deadline = self.reply_by(when)
        if deadline is None:
            return f"The clinic is closed at the moment; please call {self.phone} if you have not heard from us."
        meanwhile = (
            f"If you need medical advice before then, contact {self.urgent_care}; "
            f"in an emergency call {self.emergency_number}."
        )
        if self.is_open(when):
            hours = self.follow_up_within_hours
            if deadline - local == timedelta(hours=hours):
                unit = "hour" if hours == 1 else "hours"
                return f"We're open now, so a member of the team aims to contact you within about {hours:g} {unit}."
            closing = next(end for _, end in self._open_periods(local))
            return (
                f"We close at {closing:%H:%M} today, so a member of the team aims to contact you "
                f"by {self._moment(deadline, local)}. {meanwhile}"
            )
        opening = self.next_opening(when)
        if self.is_bank_holiday(local.date()):
            closed = "The clinic is closed today for the bank holiday."
        elif self.is_closure(local.date()):
            closed = "The clinic is closed today."
        else:
            closed = "The clinic is closed right now."
        by = f"{deadline:%H:%M} that day" if deadline.date() == opening.date() else self._moment(deadline, local)
        return (
            f"{closed} We open again {self._day_label(opening.date(), local.date())} at {opening:%H:%M}, "
            f"when the team will see your message, and a member of the team aims to contact you "
            f"by {by}. {meanwhile}"
        )

    @staticmethod
    def _day_label(day: date, today: date) -> str:
        """``today``, ``tomorrow``, a weekday within the week, else weekday and date."""
        if day == today:
            return "today"
        if day == today + timedelta(days=1):
            return "tomorrow"
        name = DAY_NAMES[DAYS[day.weekday()]]
        return name if (day - today).days < 7 else f"{name} {day.day} {day:%B}"

    def _moment(self, moment: datetime, local: datetime) -> str:
        """``10:50 today``, ``10:50 tomorrow``, ``10:50 on Monday``."""
        label = self._day_label(moment.date(), local.date())
        return f"{moment:%H:%M} {label}" if label in ("today", "tomorrow") else f"{moment:%H:%M} on {label}"

    def template_values(self) -> dict[str, str]:
        """Values for the ``{clinic_*}`` placeholders in responses."""
        return {
            "clinic_name": self.name,
            "clinic_phone": self.phone,
            "clinic_email": self.email,
            "clinic_address": self.address,
            "booking_url": self.booking_url,
            "emergency_number": self.emergency_number,
            "urgent_care": self.urgent_care,
            "price_info": self.price_info or f"Please call {self.phone} for current prices.",
            "opening_hours": self.hours_text(),
        }


REQUIRED = ("name", "phone", "booking_url")


def load_clinic(path: Path) -> Clinic:
    """Load and check the clinic configuration file.

    Raises:
        ClinicConfigError: the file is missing, not a mapping, lacks a required
            field, or has bad opening hours, closures, bank-holiday region or time zone.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClinicConfigError(f"cannot read clinic configuration {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ClinicConfigError(f"{path}: expected a mapping of clinic facts")
    missing = [key for key in REQUIRED if not raw.get(key)]
    if missing:
        raise ClinicConfigError(f"{path}: missing {', '.join(missing)}")
    known = set(Clinic.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ClinicConfigError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    clinic = Clinic(**{key: value for key, value in raw.items() if value is not None})
    try:
        ZoneInfo(clinic.timezone)  # raises for an unknown time zone
        for day, span in clinic.opening_hours.items():
            if day not in DAYS or not isinstance(span, (list, tuple)) or len(span) != 2:
                raise ValueError(f"bad opening hours entry {day}: {span} (write e.g. [\"08:00\", \"17:00\"])")
            if not all(isinstance(value, str) for value in span):
                raise ValueError(f"opening hours for {day} must be quoted times like \"09:00\"")
            start, end = (time.fromisoformat(value) for value in span)
            if start >= end:
                raise ValueError(f"opening hours for {day} end before they start")
        if not isinstance(clinic.closures, list):
            raise ValueError("closures must be a list of dates or {from, to} ranges")
        clinic._closed_days  # parses every closure; raises for a bad one
        clinic.on_call_plan  # raises for a bad on-call contact
        clinic._holidays  # raises NotImplementedError for an unknown country or subdivision
    except (ValueError, KeyError, TypeError) as exc:
        raise ClinicConfigError(f"{path}: {exc}") from exc
    except NotImplementedError as exc:
        raise ClinicConfigError(
            f"{path}: bank_holidays {clinic.bank_holidays!r} is not a region the holidays library knows "
            f"(write e.g. \"GB-ENG\" for England and Wales, \"GB-SCT\", \"GB-NIR\", or \"none\"): {exc}"
        ) from exc
    return clinic
