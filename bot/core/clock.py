"""The time the staff modules go by: one function, so tests can move it."""

from __future__ import annotations

from datetime import datetime

from bot.core.store.models import utcnow


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return utcnow()
