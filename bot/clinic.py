"""The clinic's own facts (name, phone, hours, prices), loaded from one YAML file.

Answers in the knowledge base never hold these values: they use placeholders
such as ``{clinic_phone}`` that :meth:`Clinic.template_values` fills in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

import yaml

logger = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))
DEFAULT_EMERGENCY_NUMBER = "your local emergency number (999 in the UK, 911 in the US, 112 in the EU)"


class ClinicConfigError(ValueError):
    """The clinic configuration file is missing a field or holds a bad value."""


@dataclass(frozen=True)
class Clinic:
    """Facts about the clinic that answers and escalation messages refer to."""

    name: str
    phone: str
    booking_url: str
    email: str = ""
    address: str = ""
    emergency_number: str = DEFAULT_EMERGENCY_NUMBER
    price_info: str = ""
    timezone: str = "UTC"
    phone_region: str = "GB"
    opening_hours: dict = field(default_factory=dict)
    follow_up_within_hours: float = 4

    @property
    def tz(self) -> ZoneInfo:
        """The clinic's time zone."""
        return ZoneInfo(self.timezone)

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
        return "; ".join(parts) if parts else "please call us for our opening hours"

    def _span(self, day: str) -> Optional[tuple[time, time]]:
        span = self.opening_hours.get(day)
        if not span:
            return None
        return time.fromisoformat(span[0]), time.fromisoformat(span[1])

    def is_open(self, when: datetime) -> bool:
        """Whether the clinic is open at ``when`` (any aware datetime)."""
        local = when.astimezone(self.tz)
        span = self._span(DAYS[local.weekday()])
        return bool(span and span[0] <= local.time() < span[1])

    def next_opening(self, when: datetime) -> Optional[datetime]:
        """The next moment the clinic opens after ``when`` (``when`` itself if open)."""
        if self.is_open(when):
            return when.astimezone(self.tz)
        local = when.astimezone(self.tz)
        for offset in range(0, 8):
            day = local.date() + timedelta(days=offset)
            span = self._span(DAYS[day.weekday()])
            if not span:
                continue
            start = datetime.combine(day, span[0], tzinfo=self.tz)
            if start > local:
                return start
        return None

    def follow_up_text(self, when: datetime) -> str:
        """A realistic sentence on when staff will be in touch, from opening hours."""
        if self.is_open(when):
            hours = self.follow_up_within_hours
            unit = "hour" if hours == 1 else "hours"
            return f"We're open now, so a member of the team aims to contact you within about {hours:g} {unit}."
        opening = self.next_opening(when)
        if opening is None:
            return f"The clinic is closed at the moment; please call {self.phone} if you have not heard from us."
        local = when.astimezone(self.tz)
        if opening.date() == local.date():
            day = "today"
        elif opening.date() == local.date() + timedelta(days=1):
            day = "tomorrow"
        else:
            day = DAY_NAMES[DAYS[opening.weekday()]]
        return (
            f"The clinic is closed right now. We open again {day} at {opening:%H:%M}, "
            "and a member of the team will contact you after that."
        )

    def template_values(self) -> dict[str, str]:
        """Values for the ``{clinic_*}`` placeholders in responses."""
        return {
            "clinic_name": self.name,
            "clinic_phone": self.phone,
            "clinic_email": self.email,
            "clinic_address": self.address,
            "booking_url": self.booking_url,
            "emergency_number": self.emergency_number,
            "price_info": self.price_info or f"Please call {self.phone} for current prices.",
            "opening_hours": self.hours_text(),
        }


REQUIRED = ("name", "phone", "booking_url")


def load_clinic(path: Path) -> Clinic:
    """Load and check the clinic configuration file.

    Raises:
        ClinicConfigError: the file is missing, not a mapping, lacks a required
            field, or has bad opening hours or time zone.
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
    except (ValueError, KeyError, TypeError) as exc:
        raise ClinicConfigError(f"{path}: {exc}") from exc
    return clinic
