"""Web Push: a staff browser is told of every new urgent case, with the dashboard tab closed.

A signed-in browser subscribes with the dashboard's VAPID public key (alerts.js, the routes
in :mod:`bot.dashboard.web.push_routes`); the subscription is a ``push_subscriptions`` row of
the account. Each notifier pass (:mod:`bot.dashboard.notify.worker`) :class:`WebPushAlerts`
finds the urgent cases still new, created within :data:`LOOKBACK`, that no push was recorded
for, and sends each to every subscription of every account that is enabled and has browser
notifications on. The case is then audited once (``notification_sent``, actor ``web_push``),
which is also what stops it being pushed again.

Why scan the store rather than the notification outbox: the outbox rows are written by the
process that escalates (the action server), whose transports are email and webhook; browsers
subscribe here, in the web app, and only here are the VAPID key and the subscriptions known.

The message carries no patient data: the payload is the case page's path only, and the service
worker (static/staff/sw.js) shows a fixed sentence. It is encrypted for the browser
(``aes128gcm``, RFC 8291) and signed with the VAPID key (RFC 8292) by pywebpush, which is
synchronous (requests): each send runs in a worker thread with a short timeout, so the event
loop never waits on a push service. A push service answering 404 or 410 has dropped the
subscription: the row is deleted. Any other failure counts in ``failures``; a case no browser
received is tried again on later passes, up to :data:`MAX_ATTEMPTS`, then audited
``notification_failed``. Subscription endpoints are capabilities (anyone holding one can push
to that browser): logs show their host only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import quote, urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid, VapidException
from py_vapid.utils import b64urlencode
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic
from bot.core.secrets import vapid_private_key_path
from bot.core.settings import Settings
from bot.core.store import repository as repo
from bot.core.store.models import (
    AuditEvent, AuditKind, Escalation, Priority, PushSubscription, StaffUser, Status, utcnow,
)

logger = logging.getLogger(__name__)

#: The audit actor of push alerts; an entry by it on a case means the case was pushed (or given up).
ACTOR = "web_push"
#: The ``transport`` the audit entries name (the case page shows "Staff notified by browser push").
TRANSPORT = "web_push"
#: Urgent cases older than this are not pushed: a browser subscribing now is not told of old cases.
LOOKBACK = timedelta(hours=1)
#: Passes in a row a case may reach no browser before it is audited as failed.
MAX_ATTEMPTS = 5
#: Most cases one pass pushes.
MAX_CASES_PER_PASS = 20
#: Bound of one push (requests' connect and read timeouts; the thread is also awaited no longer).
SEND_TIMEOUT_SECONDS = 5.0
#: How long the push service keeps a message for a browser that is offline.
TTL_SECONDS = 3600
#: What RFC 8292 accepts as the contact (``sub``): a mailto: address or an https: URL.
SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)$")
#: The case page's path, as the dashboard registers it (bot/dashboard/web/case_page.py).
CASE_PATH = "/staff/escalations/{id}"
#: Answers of a push service meaning the subscription is gone for good.
GONE = frozenset({404, 410})


# --- the key, the contact, the message --------------------------------------------------------


def load_vapid(var_dir: Path) -> Optional[Vapid]:
    """The VAPID key made by ``make secrets``, or ``None`` when it was never made (never creates it)."""
    path = vapid_private_key_path(var_dir)
    if not path.exists():
        return None
    return Vapid.from_file(str(path))


def application_server_key(vapid: Vapid) -> str:
    """The public key browsers subscribe with: the uncompressed P-256 point, base64url without padding."""
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64urlencode(point)


def subject(clinic: Clinic, settings: Settings) -> Optional[str]:
    """The VAPID contact a push service may write to: the clinic's email (clinic.yml), else NOTIFY_FROM.

    ``None`` when neither is set: push services may refuse unsigned contacts, so pushes are off.
    """
    for address in (clinic.email, settings.notify_from):
        address = (address or "").strip()
        if address and SUBJECT.match(f"mailto:{address}"):
            return f"mailto:{address}"
    return None


def case_path(escalation_id: str) -> str:
    """The case page's path (relative: the service worker opens it on its own origin)."""
    return CASE_PATH.format(id=quote(escalation_id, safe=""))


def payload(escalation_id: str) -> str:
    """What a push carries: the case page's path, nothing about the patient."""
    return json.dumps({"url": case_path(escalation_id)}, separators=(",", ":"))


def redacted(endpoint: str) -> str:
    """An endpoint as logs may show it: the push service's host, never the path (a capability)."""
    host = urlsplit(endpoint).hostname or "?"
    return f"{host}/…"


# --- one push ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One subscription, detached from any session while it is sent to."""

    id: int
    endpoint: str
    p256dh: str
    auth: str

    def info(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


DELIVERED, GONE_FOR_GOOD, FAILED = "delivered", "gone", "failed"


def send(target: Target, data: str, vapid: Vapid, contact: str, timeout: float = SEND_TIMEOUT_SECONDS) -> str:
    """Send one push (blocking: run it in a thread); ``delivered``, ``gone`` (404/410) or ``failed``."""
    try:
        webpush(
            target.info(), data, vapid_private_key=vapid,
            # A new dict each time: pywebpush writes the audience (the endpoint's origin) into it.
            vapid_claims={"sub": contact}, content_encoding="aes128gcm", timeout=timeout,
            ttl=TTL_SECONDS, headers={"Urgency": "high"},
        )
    except WebPushException as exc:
        status = exc.status_code
        if status in GONE:
            return GONE_FOR_GOOD
        logger.warning("web push to %s failed (HTTP %s)", redacted(target.endpoint), status)
        return FAILED
    except (requests.RequestException, ValueError, TypeError, VapidException) as exc:
        # ValueError/TypeError: keys that do not decode (the browser's, or a damaged row).
        logger.warning("web push to %s failed (%s)", redacted(target.endpoint), type(exc).__name__)
        return FAILED
    return DELIVERED


# --- each pass --------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one case's pushes came to."""

    delivered: list[int] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def not_pushed(now: datetime):
    """Urgent cases still new, recent, and with no push recorded."""
    pushed = exists().where(AuditEvent.escalation_id == Escalation.id, AuditEvent.actor == ACTOR)
    return (
        (Escalation.priority == Priority.urgent)
        & (Escalation.status == Status.new)
        & (Escalation.created_at >= now - LOOKBACK)
        & ~pushed
    )


async def targets(session: AsyncSession) -> list[Target]:
    """Every subscription of every enabled account with browser notifications on."""
    query = (
        select(PushSubscription.id, PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth)
        .join(StaffUser, StaffUser.id == PushSubscription.user_id)
        .where(StaffUser.disabled_at.is_(None), StaffUser.alert_notifications.is_(True))
        .order_by(PushSubscription.id)
    )
    return [Target(*row) for row in (await session.execute(query)).all()]


class WebPushAlerts:
    """Pushes new urgent cases to the subscribed staff browsers; one call per notifier pass."""

    def __init__(self, sessions: sessionmaker, vapid: Optional[Vapid], contact: Optional[str],
                 timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.sessions = sessions
        self.vapid = vapid
        self.contact = contact
        self.timeout = timeout
        #: Passes each case reached no browser (in memory: a restart gives a case its attempts again).
        self.attempts: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings, clinic: Clinic, sessions: sessionmaker) -> "WebPushAlerts":
        """Pushes as configured: off, with the reason logged, without a VAPID key or a contact."""
        vapid = load_vapid(settings.var_dir)
        contact = subject(clinic, settings)
        if vapid is None:
            logger.warning("no VAPID key in %s: Web Push to staff browsers is off (run `make secrets`)",
                           vapid_private_key_path(settings.var_dir).parent)
        elif contact is None:
            logger.warning("Web Push to staff browsers is off: set the clinic's email in clinic.yml (or NOTIFY_FROM)")
        return cls(sessions, vapid, contact)

    @property
    def active(self) -> bool:
        return self.vapid is not None and self.contact is not None

    async def run_once(self, now: Optional[datetime] = None) -> list[str]:
        """Push every new urgent case not pushed yet; the ids of the cases recorded as pushed."""
        if not self.active:
            return []
        now = now or utcnow()
        async with self.sessions() as session, session.begin():
            cases = list((await session.execute(
                select(Escalation.id).where(not_pushed(now)).order_by(Escalation.created_at).limit(MAX_CASES_PER_PASS)
            )).scalars())
            if not cases:
                return []
            subscribed = await targets(session)
        if not subscribed:
            return []  # nobody to tell: the cases stay eligible until LOOKBACK passes
        pushed = []
        for escalation_id in cases:
            tally = await self._push(escalation_id, subscribed)
            gone = set(tally.gone)
            subscribed = [target for target in subscribed if target.id not in gone]
            if await self._record(escalation_id, tally):
                pushed.append(escalation_id)
        return pushed

    async def _push(self, escalation_id: str, subscribed: Sequence[Target]) -> Tally:
        """Send one case to every subscription at once, each in a thread, outside any transaction."""
        data = payload(escalation_id)

        async def one(target: Target) -> str:
            try:
                return await asyncio.wait_for(
                    asyncio.to_thread(send, target, data, self.vapid, self.contact, self.timeout),
                    self.timeout + 1,
                )
            except asyncio.TimeoutError:
                logger.warning("web push to %s timed out", redacted(target.endpoint))
                return FAILED

        results = await asyncio.gather(*(one(target) for target in subscribed))
        tally = Tally()
        for target, result in zip(subscribed, results):
            getattr(tally, result).append(target.id)
        return tally

    async def _record(self, escalation_id: str, tally: Tally) -> bool:
        """Record one case's pushes in a short transaction; whether the case is now done."""
        now = utcnow()
        detail = {"transport": TRANSPORT, "delivered": len(tally.delivered), "failed": len(tally.failed),
                  "gone": len(tally.gone)}
        async with self.sessions() as session, session.begin():
            if tally.gone:
                await session.execute(delete(PushSubscription).where(PushSubscription.id.in_(tally.gone)))
            if tally.delivered:
                await session.execute(
                    update(PushSubscription).where(PushSubscription.id.in_(tally.delivered))
                    .values(last_success_at=now, failures=0)
                )
            if tally.failed:
                await session.execute(
                    update(PushSubscription).where(PushSubscription.id.in_(tally.failed))
                    .values(failures=PushSubscription.failures + 1)
                )
            if tally.delivered:
                await repo.add_audit(session, AuditKind.notification_sent, escalation_id=escalation_id,
                                     actor=ACTOR, detail=detail)
                self.attempts.pop(escalation_id, None)
                logger.info("urgent case %s pushed to %d browser(s)", escalation_id[:8], len(tally.delivered))
                return True
            attempts = self.attempts.get(escalation_id, 0) + 1
            if tally.failed and attempts < MAX_ATTEMPTS:
                self.attempts[escalation_id] = attempts
                logger.warning("urgent case %s reached no browser (attempt %d); will retry",
                               escalation_id[:8], attempts)
                return False
            # Every try failed, or every subscription is gone: nobody to retry for.
            self.attempts.pop(escalation_id, None)
            await repo.add_audit(session, AuditKind.notification_failed, escalation_id=escalation_id,
                                 actor=ACTOR, detail={**detail, "attempts": attempts})
            logger.error("gave up pushing urgent case %s to staff browsers", escalation_id[:8])
            return True
