"""Escalating a conversation to clinic staff: durable first, then notify.

:meth:`EscalationService.escalate` commits the escalation, its audit events and
its notification outbox rows in one transaction. Only a committed record lets
the caller tell the patient "staff will contact you"; if the database fails the
escalation goes to the local spool for replay and the caller gives the clinic's
phone number instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bot.escalation.spool import Spool
from bot.settings import Settings
from bot.store import repository as repo
from bot.store.models import AuditKind, Priority, Reason
from bot.store.repository import EscalationInput

logger = logging.getLogger(__name__)

PRIORITY_FOR = {
    Reason.emergency: Priority.urgent,
    Reason.adverse_event: Priority.high,
    Reason.contraindication: Priority.normal,
    Reason.human_request: Priority.normal,
}


@dataclass(frozen=True)
class Outcome:
    """What happened to an escalation."""

    stored: bool
    escalation_id: Optional[str] = None
    created: bool = False
    spooled: bool = False


def transports(settings: Settings) -> list[str]:
    """The notification transports configured for staff."""
    found = []
    if settings.smtp_host and settings.notify_email_to:
        found.append("email")
    if settings.notify_webhook_url:
        found.append("webhook")
    return found


def notification_payload(escalation_id: str, reason: Reason, priority: Priority, created: bool) -> dict[str, Any]:
    """What staff notifications carry: no patient text, name or contact details."""
    return {
        "event": "escalation.created" if created else "escalation.updated",
        "escalation_id": escalation_id,
        "reason": reason.value,
        "priority": priority.value,
        "urgent": priority == Priority.urgent,
    }


class EscalationService:
    """Stores escalations and consent decisions, with the spool as a safety net."""

    def __init__(self, sessions: sessionmaker, spool: Spool, transports: Iterable[str]) -> None:
        self.sessions = sessions
        self.spool = spool
        self.transports = list(transports)

    async def escalate(self, data: EscalationInput) -> Outcome:
        """Store (or update) the escalation; spool it if the database fails."""
        try:
            escalation_id, created = await self._store(data)
        except (SQLAlchemyError, OSError, ConnectionError) as exc:
            logger.error(
                "escalation store unavailable (%s: %s); spooling %s escalation for replay",
                type(exc).__name__,
                str(exc)[:200],
                data.reason.value,
            )
            try:
                self.spool.append(data)
            except OSError:
                logger.critical("could not spool a %s escalation either: it must be recovered from logs of the conversation", data.reason.value)
                return Outcome(stored=False)
            return Outcome(stored=False, spooled=True)
        logger.info("escalation %s %s (%s)", escalation_id, "created" if created else "updated", data.reason.value)
        return Outcome(stored=True, escalation_id=escalation_id, created=created)

    async def store_spooled(self, data: EscalationInput) -> None:
        """Store one escalation recovered from the spool (raises on failure)."""
        escalation_id, _ = await self._store(data, recovered=True)
        logger.info("recovered spooled escalation %s", escalation_id)

    async def _store(self, data: EscalationInput, recovered: bool = False) -> tuple[str, bool]:
        async with self.sessions() as session:
            async with session.begin():
                record, created = await repo.upsert_escalation(session, data)
                detail = {"reason": data.reason.value, "priority": record.priority.value,
                          "matched_terms": data.trigger.get("matched_terms", [])}
                await repo.add_audit(
                    session,
                    AuditKind.escalation_created if created else AuditKind.escalation_updated,
                    escalation_id=record.id,
                    sender_id=data.sender_id,
                    detail=detail,
                )
                if data.reason == Reason.emergency:
                    await repo.add_audit(
                        session, AuditKind.red_flag_triggered, escalation_id=record.id,
                        sender_id=data.sender_id, detail=detail,
                    )
                if data.consent_given:
                    await repo.add_audit(
                        session, AuditKind.consent_given, escalation_id=record.id, sender_id=data.sender_id,
                        detail={"contact_method": data.contact_method},
                    )
                if recovered:
                    await repo.add_audit(
                        session, AuditKind.recovered_from_spool, escalation_id=record.id, sender_id=data.sender_id
                    )
                if created or data.reason == Reason.emergency:
                    for transport in self.transports:
                        await repo.enqueue_notification(
                            session, record.id, transport,
                            notification_payload(record.id, data.reason, record.priority, created),
                        )
                return record.id, created

    async def consent_declined(self, sender_id: str, reason: Optional[str]) -> bool:
        """Record that the patient declined to be contacted; ``False`` if it could not be stored."""
        try:
            async with self.sessions() as session:
                async with session.begin():
                    await repo.add_audit(
                        session, AuditKind.consent_declined, sender_id=sender_id, detail={"reason": reason}
                    )
        except (SQLAlchemyError, OSError, ConnectionError) as exc:
            logger.error("could not record a declined consent (%s)", type(exc).__name__)
            return False
        return True
