"""The on-call route: urgent cases nobody has opened are sent to the on-call contacts, wider each round.

Who is on call, in order, and how long to wait before alerting again are in ``clinic.yml``
(``on_call``, :class:`bot.core.clinic.OnCall`). The schedule (:func:`round_due`,
:func:`recipients`) is pure: round 0 goes to the first contact as soon as an urgent case
exists; while nobody opens the case, each ``realert_minutes`` after the last round another
round goes out, to one more contact and again to the earlier ones, until ``max_rounds``.

A case counts as opened when a staff member opened its page (``case_opened`` in the audit
log), took it (assigned) or moved it on from "new", or when an on-call contact it alerted
texted back (``on_call_acknowledged``, :func:`acknowledge`; the SMS channel records it,
:mod:`bot.assistant.messaging.on_call_replies`). :class:`OnCallAlerts` runs the schedule
in the notifier (:mod:`bot.dashboard.notify.worker`): an SMS is queued in the SMS outbox
that the Rasa process's sender delivers through Twilio (:mod:`bot.core.messaging.store`),
an email in the notification outbox (transport ``on_call_email``); each round is an
``on_call_alerted`` audit entry on the case. Alerts carry the case's short reference and
the link to its page only, never patient text.

:func:`route_problems` tells the urgent alert check (:mod:`bot.core.escalation.alerting`)
whether this route works now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional, Sequence
from urllib.parse import quote

from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.core.clinic import OnCall, OnCallContact
from bot.core.escalation.delivery import transport_problem
from bot.core.messaging import store as sms_store
from bot.core.messaging.addresses import SMS, Address
from bot.core.store import repository as repo
from bot.core.store.models import (
    AuditEvent, AuditKind, Escalation, Priority, SmsOutbound, SmsOutboundStatus,
    Status, utcnow,
)

logger = logging.getLogger(__name__)

#: The notification-outbox transport of on-call emails (the notifier sends them by SMTP).
EMAIL_TRANSPORT = "on_call_email"
#: The SMS outbox origin of on-call texts.
SMS_ORIGIN = "on_call"
#: Urgent cases older than this are not paged: turning ``on_call`` on does not page for old cases.
LOOKBACK = timedelta(hours=24)
#: Most cases one pass alerts.
MAX_CASES_PER_PASS = 50


# --- the schedule ------------------------------------------------------------------------------


def round_due(plan: OnCall, created_at: datetime, rounds_sent: int, last_alert_at: Optional[datetime],
              now: datetime) -> Optional[int]:
    """The round to send now for an unopened urgent case, or ``None`` (not yet, or all sent)."""
    if not plan.contacts or rounds_sent >= plan.rounds:
        return None
    if rounds_sent == 0:
        return 0 if now >= created_at else None
    if last_alert_at is None or now >= last_alert_at + plan.realert:
        return rounds_sent
    return None


def recipients(plan: OnCall, round_number: int) -> tuple[OnCallContact, ...]:
    """Who round ``round_number`` alerts: the first ``round_number + 1`` contacts (all, once exhausted)."""
    return plan.contacts[: round_number + 1]


def reference(escalation_id: str) -> str:
    """The case's short reference, as the notifier's email subject shows it."""
    return escalation_id[:8]


def case_url(public_web_url: str, escalation_id: str) -> Optional[str]:
    """The case page's absolute address (``PUBLIC_WEB_URL`` + the case route), ``None`` without a public URL."""
    base = (public_web_url or "").rstrip("/")
    return f"{base}/staff/escalations/{quote(escalation_id, safe='')}" if base and escalation_id else None


def sms_text(clinic_name: str, escalation_id: str, url: Optional[str], round_number: int) -> str:
    """The on-call text: no patient information, the reference and the link only."""
    again = " (reminder: nobody has opened it yet)" if round_number else ""
    where = f" {url}" if url else " Open it on the staff dashboard."
    return f"URGENT {clinic_name[:30]}: case {reference(escalation_id)} needs someone now{again}.{where}"


# --- who opened what ---------------------------------------------------------------------------


async def record_opened(session: AsyncSession, escalation_id: str, actor: str) -> bool:
    """Audit that a staff member opened the case page, the first time only; whether it was recorded."""
    seen = select(AuditEvent.id).where(
        AuditEvent.escalation_id == escalation_id, AuditEvent.kind == AuditKind.case_opened
    ).limit(1)
    if (await session.execute(seen)).first() is not None:
        return False
    await repo.add_audit(session, AuditKind.case_opened, escalation_id=escalation_id, actor=actor)
    return True


#: Audit kinds that mean someone is on the case: no more on-call rounds.
OPENED = (AuditKind.case_opened, AuditKind.on_call_acknowledged)


def unopened(now: datetime):
    opened = exists().where(
        AuditEvent.escalation_id == Escalation.id, AuditEvent.kind.in_(OPENED)
    )
    return and_(
        Escalation.priority == Priority.urgent,
        Escalation.status == Status.new,
        Escalation.assignee_id.is_(None),
        Escalation.assignee.is_(None),
        Escalation.created_at >= now - LOOKBACK,
        ~opened,
    )


def contact_for_number(plan: OnCall, number: str) -> Optional[OnCallContact]:
    """The on-call contact whose phone is ``number`` (E.164, as :func:`bot.core.messaging.addresses.parse_address`
    gives it; ``clinic.yml`` phones are normalised to E.164 when loaded), or ``None``."""
    if not number:
        return None
    return next((contact for contact in plan.contacts if contact.phone and contact.phone == number), None)


async def alerted_open_cases(session: AsyncSession, name: str, now: datetime) -> list[str]:
    """The urgent cases an alert round reached ``name`` about that are not resolved yet, oldest first."""
    query = (
        select(Escalation.id, AuditEvent.detail)
        .join(AuditEvent, AuditEvent.escalation_id == Escalation.id)
        .where(
            AuditEvent.kind == AuditKind.on_call_alerted,
            Escalation.priority == Priority.urgent,
            Escalation.status != Status.resolved,
            Escalation.created_at >= now - LOOKBACK,
        )
        .order_by(Escalation.created_at, AuditEvent.id)
    )
    found: list[str] = []
    for escalation_id, detail in (await session.execute(query)).all():
        contacts = (detail or {}).get("contacts") if isinstance(detail, dict) else None
        reached = any(isinstance(entry, dict) and entry.get("name") == name for entry in contacts or [])
        if reached and escalation_id not in found:
            found.append(escalation_id)
    return found[:MAX_CASES_PER_PASS]


async def acknowledge(
    session: AsyncSession, contact: OnCallContact, now: datetime, via: str, sender_id: Optional[str] = None
) -> list[str]:
    """An on-call contact texted back: audit it on every open case they were alerted about; returns those cases.

    With no such case it is audited once against the contact's own messaging conversation
    (``sender_id``), so the reply is on record too. The audit never holds their text.
    """
    cases = await alerted_open_cases(session, contact.name, now)
    for escalation_id in cases:
        event = await repo.add_audit(
            session, AuditKind.on_call_acknowledged, escalation_id=escalation_id, actor=contact.name[:128],
            detail={"via": via},
        )
        event.created_at = now
    if not cases:
        event = await repo.add_audit(
            session, AuditKind.on_call_acknowledged, sender_id=sender_id, actor=contact.name[:128],
            detail={"via": via, "cases": 0},
        )
        event.created_at = now
    return cases


# --- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One round sent for one case."""

    escalation_id: str
    round: int
    contacts: tuple[str, ...]


class OnCallAlerts:
    """Sends the rounds that are due; one call per notifier pass."""

    def __init__(self, sessions: sessionmaker, plan: OnCall, channels: Iterable[str], clinic_name: str,
                 public_web_url: str) -> None:
        self.sessions = sessions
        self.plan = plan
        #: ``sms`` when Twilio is configured, ``email`` when SMTP is.
        self.channels = frozenset(channels)
        self.clinic_name = clinic_name
        self.public_web_url = public_web_url

    @property
    def active(self) -> bool:
        return bool(self.plan.contacts) and bool(self.channels)

    async def run_once(self, now: Optional[datetime] = None) -> list[Alert]:
        """Send every round due at ``now`` (default: the current time) in one transaction."""
        if not self.active:
            return []
        now = now or utcnow()
        async with self.sessions() as session:
            async with session.begin():
                return await self.send_due(session, now)

    async def send_due(self, session: AsyncSession, now: datetime) -> list[Alert]:
        rounds = (
            select(AuditEvent.escalation_id, func.count(AuditEvent.id), func.max(AuditEvent.created_at))
            .where(AuditEvent.kind == AuditKind.on_call_alerted)
            .group_by(AuditEvent.escalation_id)
            .subquery()
        )
        query = (
            select(Escalation.id, Escalation.created_at, rounds.c[1], rounds.c[2])
            .outerjoin(rounds, rounds.c.escalation_id == Escalation.id)
            .where(unopened(now))
            .order_by(Escalation.created_at)
            .limit(MAX_CASES_PER_PASS)
        )
        sent = []
        for escalation_id, created_at, count, last in (await session.execute(query)).all():
            number = round_due(self.plan, created_at, count or 0, last, now)
            if number is not None:
                sent.append(await self._send(session, escalation_id, number, now))
        return sent

    async def _send(self, session: AsyncSession, escalation_id: str, number: int, now: datetime) -> Alert:
        url = case_url(self.public_web_url, escalation_id)
        reached = []
        for contact in recipients(self.plan, number):
            via = []
            if contact.phone and "sms" in self.channels:
                row = await sms_store.contact_for(session, Address(SMS, contact.phone), now)
                await sms_store.queue(
                    session, row, [sms_text(self.clinic_name, escalation_id, url, number)], now, origin=SMS_ORIGIN,
                )
                via.append("sms")
            if contact.email and "email" in self.channels:
                payload = {
                    "event": "escalation.on_call", "escalation_id": escalation_id, "priority": "urgent",
                    "urgent": True, "reason": "on call", "to": contact.email, "round": number,
                }
                await repo.enqueue_notification(session, escalation_id, EMAIL_TRANSPORT, payload, Priority.urgent)
                via.append("email")
            if not via:
                logger.warning("on-call contact %d has no channel configured here", self.plan.contacts.index(contact))
            reached.append({"name": contact.name, "via": via})
        event = await repo.add_audit(
            session, AuditKind.on_call_alerted, escalation_id=escalation_id, actor="on_call",
            detail={"round": number, "contacts": reached},
        )
        event.created_at = now
        logger.info("on-call round %d for urgent case %s", number, reference(escalation_id))
        return Alert(escalation_id, number, tuple(entry["name"] for entry in reached))


# --- whether the route works now ---------------------------------------------------------------


def first_channels(plan: OnCall, channels: Iterable[str]) -> frozenset[str]:
    """The configured channels the first contact (the one alerted at once) can be reached on."""
    channels = frozenset(channels)
    if not plan.contacts:
        return frozenset()
    first = plan.contacts[0]
    return frozenset(c for c, there in (("sms", first.phone), ("email", first.email)) if there and c in channels)


def usable(plan: OnCall, channels: Iterable[str]) -> bool:
    """Whether the first contact can be reached on a channel configured here."""
    return bool(first_channels(plan, channels))


async def route_problems(
    session: AsyncSession, plan: OnCall, channels: Iterable[str], now: datetime, overdue_after: timedelta
) -> Sequence[str]:
    """Why the on-call route does not reach someone now (empty when it does).

    ``on_call_not_configured`` (the first contact has no channel configured here);
    ``on_call_overdue`` (an unopened urgent case got no round within ``overdue_after``: the
    notifier that runs the schedule is not running); ``on_call_sms_overdue``/``_failing``
    and ``on_call_email_overdue``/``_failing`` when none of the first contact's channels is
    delivering.
    """
    reach = first_channels(plan, channels)
    if not reach:
        return ("on_call_not_configured",)
    alerted = exists().where(AuditEvent.escalation_id == Escalation.id, AuditEvent.kind == AuditKind.on_call_alerted)
    late = select(func.count()).select_from(Escalation).where(
        unopened(now), Escalation.created_at <= now - overdue_after, ~alerted
    )
    if (await session.execute(late)).scalar_one():
        return ("on_call_overdue",)
    problems = []
    if "sms" in reach:
        problems.append(await _sms_problem(session, now, overdue_after))
    if "email" in reach:
        problems.append(await transport_problem(session, EMAIL_TRANSPORT, now, overdue_after))
    if all(problems):
        return tuple(problems)
    return ()


async def _sms_problem(session: AsyncSession, now: datetime, overdue_after: timedelta) -> Optional[str]:
    waiting = select(func.count()).select_from(SmsOutbound).where(
        SmsOutbound.origin == SMS_ORIGIN,
        SmsOutbound.status == SmsOutboundStatus.pending,
        SmsOutbound.created_at <= now - overdue_after,
    )
    if (await session.execute(waiting)).scalar_one():
        return "on_call_sms_overdue"
    latest = (
        select(SmsOutbound.status, SmsOutbound.delivery_status)
        .where(SmsOutbound.origin == SMS_ORIGIN, SmsOutbound.status != SmsOutboundStatus.pending)
        .order_by(SmsOutbound.id.desc())
        .limit(1)
    )
    row = (await session.execute(latest)).first()
    if row is not None and (
        row[0] in (SmsOutboundStatus.failed, SmsOutboundStatus.suppressed)
        or (row[1] or "") in sms_store.FAILED_DELIVERY
    ):
        return "on_call_sms_failing"
    return None


def channels_of(twilio_configured: bool, smtp_configured: bool) -> frozenset[str]:
    """The on-call channels this deployment can send on."""
    return frozenset({"sms"} if twilio_configured else set()) | frozenset({"email"} if smtp_configured else set())
