"""What staff see of cases: the queue's rows, one case, its notes and audit trail, a page.

Frozen view models with their JSON form (the API's); no queries here (:mod:`bot.dashboard.staff.case_store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from bot.core.store.models import Outcome, Priority, Reason, Status
from bot.dashboard.staff.waiting import Wait

#: Allowed status changes: take a case, resolve it, put it back, reopen it.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.new: frozenset({Status.in_progress}),
    Status.in_progress: frozenset({Status.resolved, Status.new}),
    Status.resolved: frozenset({Status.in_progress}),
}


def _iso(moment: Optional[datetime]) -> Optional[str]:
    return moment.isoformat() if moment else None


@dataclass(frozen=True)
class CaseSummary:
    """One row of the queue. Holds the contact name: staff-only data, never for URLs or logs."""

    id: str
    created_at: datetime
    updated_at: datetime
    channel: str
    reason: Reason
    priority: Priority
    status: Status
    occurrences: int
    assignee_id: Optional[int]
    #: The holder's username (also kept in the escalation's ``assignee`` column).
    assignee: Optional[str]
    #: The holder's display name (their username if they have none).
    assignee_name: Optional[str]
    contact_name: Optional[str]
    contact_method: Optional[str]
    consent_given: Optional[bool]
    outcome: Optional[Outcome]
    outcome_at: Optional[datetime]
    attempts: int
    resolved_at: Optional[datetime]
    #: How long the patient has waited against the promise (``None`` without a clinic).
    wait: Optional[Wait] = None
    #: No contact details and not a text message: staff cannot reach the patient (bot/core/escalation/flood.py).
    unverified: bool = False
    #: The grouped case of a client address past its cap of urgent escalations.
    possible_abuse: bool = False

    @property
    def red_flag(self) -> bool:
        """A red flag (emergency) or otherwise urgent case: it must stand out in the queue."""
        return self.reason == Reason.emergency or self.priority == Priority.urgent

    @property
    def open(self) -> bool:
        """Not resolved yet."""
        return self.status != Status.resolved

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "channel": self.channel,
            "reason": self.reason.value,
            "priority": self.priority.value,
            "status": self.status.value,
            "red_flag": self.red_flag,
            "unverified": self.unverified,
            "possible_abuse": self.possible_abuse,
            "occurrences": self.occurrences,
            "assignee": (
                {"id": self.assignee_id, "username": self.assignee, "display_name": self.assignee_name}
                if self.assignee_id is not None or self.assignee else None
            ),
            "contact": {"name": self.contact_name, "method": self.contact_method, "consent": self.consent_given},
            "outcome": self.outcome.value if self.outcome else None,
            "outcome_at": _iso(self.outcome_at),
            "attempts": self.attempts,
            "resolved_at": _iso(self.resolved_at),
            "wait": self.wait.to_dict() if self.wait else None,
        }


@dataclass(frozen=True)
class NoteView:
    """A private staff note."""

    id: int
    created_at: datetime
    author: str
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": _iso(self.created_at), "author": self.author, "body": self.body}


@dataclass(frozen=True)
class AuditEntry:
    """One event of the case's audit trail (its detail never holds patient text)."""

    id: int
    created_at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": _iso(self.created_at), "kind": self.kind, "actor": self.actor,
                "detail": self.detail}


@dataclass(frozen=True)
class CaseDetail:
    """One case with everything the conversation view shows besides the live conversation."""

    summary: CaseSummary
    #: The Rasa conversation id: read the tracker with it; never put it in a URL.
    sender_id: str
    #: What triggered the escalation: intent, confidence, matched terms, the message, when; ``history``.
    trigger: dict[str, Any]
    contact_detail: Optional[str]
    consent_at: Optional[datetime]
    #: The snapshot taken when the case was escalated (the tracker holds the whole conversation).
    transcript: list[dict[str, Any]]
    notes: list[NoteView] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.summary.id

    def allowed_statuses(self) -> list[Status]:
        """Where the status may go from here (for the buttons)."""
        return sorted(TRANSITIONS[self.summary.status], key=list(Status).index)

    def to_dict(self) -> dict[str, Any]:
        contact = {**self.summary.to_dict()["contact"], "detail": self.contact_detail,
                   "consent_at": _iso(self.consent_at)}
        return {
            **self.summary.to_dict(),
            "contact": contact,
            "trigger": self.trigger,
            "transcript": self.transcript,
            "allowed_statuses": [status.value for status in self.allowed_statuses()],
            "notes": [note.to_dict() for note in self.notes],
            "audit": [entry.to_dict() for entry in self.audit],
        }


@dataclass(frozen=True)
class CasePage:
    """One page of the queue."""

    items: list[CaseSummary]
    total: int
    page: int
    per_page: int
    #: Cases per status under the same filters except the status filter (for the tabs).
    counts: dict[str, int]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [item.to_dict() for item in self.items],
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
            "counts": self.counts,
        }


@dataclass(frozen=True)
class Colleague:
    """A staff account a case can be assigned to."""

    id: int
    username: str
    display_name: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name}
