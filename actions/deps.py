"""Shared dependencies of the action server, created once per process on first use.

The action server (``rasa run actions``) imports this package itself, so there
is no app factory to pass settings into: this module is that single place.
Nothing connects at import time.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Optional

from bot.core import process
from bot.core.clinic import Clinic, load_clinic
from bot.core.escalation import record
from bot.core.escalation.service import EscalationService
from bot.core.knowledge.catalog import KnowledgeBase, load
from bot.core.settings import Settings
from bot.core.store.db import create_engine, session_factory

logger = logging.getLogger(__name__)

_service: Optional[EscalationService] = None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """This process's settings."""
    return process.settings()


@lru_cache(maxsize=1)
def clinic() -> Clinic:
    """The clinic configuration."""
    return load_clinic(settings().clinic_config)


@lru_cache(maxsize=1)
def knowledge() -> KnowledgeBase:
    """The curated knowledge base (titles for suggestion buttons)."""
    return load()


def service() -> EscalationService:
    """The escalation service (engine created lazily inside the running event loop)."""
    global _service
    if _service is None:
        current = settings()
        engine = create_engine(current.database_url)
        _service = EscalationService.from_settings(current, session_factory(engine))
    return _service


def use_service(replacement: Optional[EscalationService]) -> None:
    """Swap the escalation service (tests use a store of their own)."""
    global _service
    _service = replacement


def transcript(events: list[dict[str, Any]], limit: int = 60) -> list[dict[str, Any]]:
    """The conversation so far as a list of turns, for the escalation record (:func:`bot.core.escalation.record.transcript`)."""
    return record.transcript(events, limit)
