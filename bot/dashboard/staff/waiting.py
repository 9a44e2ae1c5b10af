"""How long a patient has waited, against what the assistant promised them.

When the patient leaves contact details, the assistant tells them when to expect the
clinic (:meth:`bot.core.clinic.Clinic.follow_up_text`, from ``clinic.yml``'s opening hours):
"within about N hours" while the clinic is open, otherwise "by 10:50 tomorrow" or "by 10:00
on Monday". Both count ``follow_up_within_hours`` in open hours only (nights, weekends, bank
holidays and closures do not count). :func:`promised_by` takes its deadline from the same
primitive (:meth:`~bot.core.clinic.Clinic.reply_by`), so the dashboard measures staff against
the sentence the patient read; with no opening hours known there is no deadline (the
patient was asked to call).

The promise is made when the patient consents to be contacted (``consent_at``). An
escalation without consent (say, a red flag where the patient was told to get help
first) carries no promise: its wait is shown, never "overdue". The wait stops when
staff record an outcome that reached the patient (not "no answer"), or resolve the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from bot.core.clinic import Clinic

NO_ANSWER = "no_answer"


def promised_by(clinic: Clinic, promised_at: datetime) -> Optional[datetime]:
    """When staff should have contacted a patient promised a follow-up at ``promised_at`` (UTC)."""
    deadline = clinic.reply_by(promised_at)
    return deadline.astimezone(promised_at.tzinfo) if deadline else None


@dataclass(frozen=True)
class Wait:
    """The patient's wait on one escalation."""

    #: Since when the patient has been waiting (the promise, else the escalation).
    since: datetime
    #: The deadline the promise implies; ``None`` when nothing was promised.
    promised_by: Optional[datetime]
    #: When the wait ended (an outcome recorded or the case resolved); ``None`` while it goes on.
    ended_at: Optional[datetime]
    #: ``ended_at`` (or now) minus ``since``.
    waited: timedelta
    #: The deadline passed before the wait ended (or passed already, for a wait still going on).
    overdue: bool

    @property
    def promised(self) -> bool:
        """Whether the patient was promised a follow-up."""
        return self.promised_by is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO 8601 times, seconds)."""
        return {
            "since": self.since.isoformat(),
            "promised_by": self.promised_by.isoformat() if self.promised_by else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "waited_seconds": int(self.waited.total_seconds()),
            "overdue": self.overdue,
        }


def wait_of(
    clinic: Clinic,
    now: datetime,
    *,
    created_at: datetime,
    consent_given: Optional[bool],
    consent_at: Optional[datetime],
    outcome: Optional[str] = None,
    outcome_at: Optional[datetime] = None,
    resolved_at: Optional[datetime] = None,
) -> Wait:
    """The wait of one escalation at ``now`` (all datetimes aware).

    A "no answer" outcome does not end the wait: the patient has still not been reached.
    """
    promised_at = consent_at if consent_given and consent_at else None
    since = promised_at or created_at
    reached_at = outcome_at if outcome and outcome != NO_ANSWER else None
    ends = [moment for moment in (reached_at, resolved_at) if moment is not None and moment >= since]
    ended_at = min(ends) if ends else None
    deadline = promised_by(clinic, promised_at) if promised_at else None
    until = ended_at or now
    return Wait(
        since=since,
        promised_by=deadline,
        ended_at=ended_at,
        waited=max(timedelta(0), until - since),
        overdue=deadline is not None and until > deadline,
    )


def describe(wait: Wait) -> str:
    """A short staff-facing label, e.g. ``"2 h 05 min"``."""
    minutes = int(wait.waited.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"
