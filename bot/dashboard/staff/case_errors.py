"""What case work reports to staff when it refuses or cannot do something, and who acts.

Every message is safe to show staff: it never holds patient text.
"""

from __future__ import annotations

from typing import Protocol


class CaseError(Exception):
    """Base of the errors case work reports to staff (the message is safe to show)."""


class CaseNotFound(CaseError):
    """No escalation with this id (or the id is malformed)."""


class InvalidInput(CaseError, ValueError):
    """A filter, note, outcome or assignee staff sent is not acceptable."""


class InvalidTransition(CaseError):
    """The status change is not allowed from the case's current status."""


class CaseChanged(CaseError):
    """Someone else changed the case between reading and writing it: reload and try again."""


class Actor(Protocol):
    """Who acts: ``bot.dashboard.web.auth.StaffIdentity`` or anything with an id and a username."""

    id: int
    username: str
