"""Escalating a conversation to clinic staff: durable first, then notify.

:meth:`EscalationService.escalate` commits the escalation, its audit events and
its notification outbox rows in one transaction. Only a committed record lets
the caller tell the patient "staff will contact you". If the store fails in
any way (refused, broken, or silent past ``store_timeout`` seconds) the
escalation goes to the local spool for replay, ``escalate`` still returns, and
the caller gives the clinic's phone number instead: an exception here would
make the action server drop the urgent guidance already composed for the patient.

A conversation that repeats a red flag updates its one open escalation (the
store counts the occurrences) and notifies staff once per episode, not once per
message. Unusually many new escalations in an hour are logged and audited, and urgent
escalations without contact details past a client address's hourly cap go into that
address's one "possible abuse" case (:mod:`bot.core.escalation.flood`).

Whether an urgent escalation stored now also reaches someone now (the clinic open, a
transport configured and delivering) is :meth:`EscalationService.urgent_alert`, the check
in :mod:`bot.core.escalation.alerting`: the patient hears "alerted as urgent" only on its word.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Optional

from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic, load_clinic
from bot.core.escalation import on_call
from bot.core.escalation.alerting import AlertCheck, UrgentAlertRoute
from bot.core.escalation.flood import FloodGuard
from bot.core.escalation.spool import Spool
from bot.core.settings import Settings
from bot.core.store import repository as repo
from bot.core.store.db import bounded
from bot.core.store.models import AuditKind, Priority, Reason, utcnow
from bot.core.store.repository import EscalationInput

logger = logging.getLogger(__name__)

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


def on_call_channels(settings: Settings) -> frozenset[str]:
    """The channels on-call alerts can go on (:mod:`bot.core.escalation.on_call`): SMS with Twilio, email with SMTP."""
    return on_call.channels_of(settings.twilio_configured, bool(settings.smtp_host))


def staff_can_be_notified(settings: Settings) -> bool:
    """Whether any transport tells staff of new escalations (else they only see the store)."""
    return bool(transports(settings))


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

    def __init__(
        self,
        sessions: sessionmaker,
        spool: Spool,
        transports: Iterable[str],
        *,
        store_timeout: float = 8.0,
        volume_warning_per_hour: int = 20,
        urgent_per_address_per_hour: int = 5,
        clinic: Optional[Clinic] = None,
        urgent_alert_after: timedelta = timedelta(seconds=300),
        clock: Callable[[], datetime] = utcnow,
        on_call_channels: Iterable[str] = (),
    ) -> None:
        self.sessions = sessions
        self.spool = spool
        self.transports = list(transports)
        self.store_timeout = store_timeout
        self.volume_warning_per_hour = volume_warning_per_hour
        self.flood = FloodGuard(urgent_per_address_per_hour)
        # Without a clinic nobody knows whether anyone is there: the route never claims "alerted".
        self.alert_route = UrgentAlertRoute(
            sessions, self.transports, clinic, overdue_after=urgent_alert_after, clock=clock,
            on_call_channels=on_call_channels,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, sessions: sessionmaker, clinic: Optional[Clinic] = None
    ) -> "EscalationService":
        """The service as every process configures it (the clinic from ``CLINIC_CONFIG`` unless given)."""
        return cls(
            sessions,
            Spool(settings.spool_dir),
            transports(settings),
            store_timeout=settings.store_timeout_seconds,
            volume_warning_per_hour=settings.escalations_per_hour_warning,
            urgent_per_address_per_hour=settings.urgent_per_address_per_hour,
            clinic=clinic or load_clinic(settings.clinic_config),
            urgent_alert_after=timedelta(seconds=settings.urgent_notify_alert_seconds),
            on_call_channels=on_call_channels(settings),
        )

    async def urgent_alert(self) -> AlertCheck:
        """Whether an urgent escalation stored now reaches staff now (:mod:`bot.core.escalation.alerting`)."""
        return await self.alert_route.check()

    async def escalate(self, data: EscalationInput) -> Outcome:
        """Store (or update) the escalation; spool it if the store fails. Never raises."""
        try:
            escalation_id, created = await bounded(self._store(data), self.store_timeout)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the escalation must not be lost
            logger.error(
                "escalation store failed (%s); spooling a %s escalation for replay",
                type(exc).__name__, data.reason.value,
            )
            try:
                self.spool.append(data)
            except Exception as spool_error:  # noqa: BLE001 - report, never raise: the patient is waiting
                logger.critical(
                    "could not spool a %s escalation either (%s): the patient was given the clinic's phone number",
                    data.reason.value, type(spool_error).__name__,
                )
                return Outcome(stored=False)
            return Outcome(stored=False, spooled=True)
        logger.info("escalation %s %s (%s)", escalation_id, "created" if created else "updated", data.reason.value)
        return Outcome(stored=True, escalation_id=escalation_id, created=created)

    async def store_spooled(self, data: EscalationInput) -> None:
        """Store one escalation recovered from the spool (raises on failure, the spool keeps it)."""
        escalation_id, _ = await bounded(self._store(data, recovered=True), self.store_timeout)
        logger.info("recovered spooled escalation %s", escalation_id)

    async def _store(self, data: EscalationInput, recovered: bool = False) -> tuple[str, bool]:
        async with self.sessions() as session:
            async with session.begin():
                routed = await self.flood.route(session, data, utcnow())
                data = routed.data
                upserted = await repo.upsert_escalation(session, data)
                if upserted.repeat:
                    # The other process already wrote this patient message (a hung action server
                    # woke up after the Rasa server spooled it): nothing new to audit or notify.
                    logger.info("escalation %s already holds this message's write", upserted.record.id)
                    return upserted.record.id, False
                record, created, raised = upserted
                await self._audit(session, record.id, record.priority, data, created, recovered)
                if created or (raised and record.priority == Priority.urgent):
                    # Once per episode, and once more if it becomes urgent: a red flag repeated
                    # in the same conversation updates the record without notifying again.
                    payload = notification_payload(record.id, data.reason, record.priority, created)
                    payload.update({"possible_abuse": True} if data.possible_abuse else {})
                    for transport in self.transports:
                        await repo.enqueue_notification(session, record.id, transport, payload, record.priority)
                if created and routed.capped:
                    await self.flood.record_cap_reached(session, record.id, routed)
                if created:
                    await self._watch_volume(session, utcnow())
                return record.id, created

    async def _audit(
        self,
        session: Any,
        escalation_id: str,
        priority: Priority,
        data: EscalationInput,
        created: bool,
        recovered: bool,
    ) -> None:
        detail = {"reason": data.reason.value, "priority": priority.value,
                  "matched_terms": data.trigger.get("matched_terms", [])}
        kind = AuditKind.escalation_created if created else AuditKind.escalation_updated
        await repo.add_audit(session, kind, escalation_id=escalation_id, sender_id=data.sender_id, detail=detail)
        if data.reason == Reason.emergency:
            await repo.add_audit(
                session, AuditKind.red_flag_triggered, escalation_id=escalation_id, sender_id=data.sender_id,
                detail=detail,
            )
        if data.consent_given:
            await repo.add_audit(
                session, AuditKind.consent_given, escalation_id=escalation_id, sender_id=data.sender_id,
                detail={"contact_method": data.contact_method},
            )
        elif data.consent_given is False:
            await repo.add_audit(
                session, AuditKind.consent_declined, escalation_id=escalation_id, sender_id=data.sender_id,
                detail={"reason": data.reason.value},
            )
        if recovered:
            await repo.add_audit(
                session, AuditKind.recovered_from_spool, escalation_id=escalation_id, sender_id=data.sender_id
            )

    async def _watch_volume(self, session: Any, now: datetime) -> None:
        count = await repo.record_unusual_volume(session, now, self.volume_warning_per_hour)
        if count is not None:
            logger.warning(
                "unusual escalation volume: %d escalations created in the last hour (warning threshold %d)",
                count, self.volume_warning_per_hour,
            )

    async def consent_declined(self, sender_id: str, reason: Optional[str]) -> bool:
        """Record that the patient declined to be contacted; ``False`` if it could not be stored."""
        try:
            await bounded(self._consent_declined(sender_id, reason), self.store_timeout)
        except Exception as exc:  # noqa: BLE001 - the patient is told to call either way; never raise here
            logger.error("could not record a declined consent (%s)", type(exc).__name__)
            return False
        return True

    async def _consent_declined(self, sender_id: str, reason: Optional[str]) -> None:
        async with self.sessions() as session:
            async with session.begin():
                await repo.add_audit(
                    session, AuditKind.consent_declined, sender_id=sender_id, detail={"reason": reason}
                )

    async def declined_on_record(self, data: EscalationInput) -> Outcome:
        """Record on an incident's escalation that the patient declined to be contacted.

        An adverse event or emergency stays recorded whatever the patient chooses;
        ``consent_given`` becomes ``False`` (staff may not contact them) and the audit
        log gets ``consent_declined`` with the escalation's id. Spooled like any
        escalation when the store fails.
        """
        return await self.escalate(replace(data, consent_given=False))
