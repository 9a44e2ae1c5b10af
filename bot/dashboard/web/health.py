"""``/healthz``: is the store reachable, and can staff be told of urgent escalations?

Liveness alone would say "ok" while an urgent escalation sits unread because no
email or webhook is configured, or because every delivery fails. The report
says so instead, with counts and ages only (never patient data), and answers
503 "degraded" when:

- the database cannot be reached;
- an urgent notification has been undelivered for longer than
  ``URGENT_NOTIFY_ALERT_SECONDS``;
- an urgent escalation is still ``new`` after that time and no notification
  about it was sent (no transport configured, or every attempt failed);
- escalations wait in the spool and the latest replay, within that time, failed:
  they are in no one's view until the store takes them.

It also reports the spool (escalations waiting for the database, unreadable
lines, replay failures) and dead letters.

Who sees what: the figures (how many urgent cases nobody was told of, and for how
long) tell an outsider when the clinic is not watching, so only a monitor on this
machine (a loopback address with no proxy's forwarding header) or signed-in staff
(an API token, or the dashboard's session at ``/staff/api/health``) get them. Anyone
else gets ``{"status": ...}`` with the same 200 or 503.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from aiohttp import web
from sqlalchemy.orm import sessionmaker

from bot.core.escalation.spool import Spool
from bot.core.messaging.inbound_spool import InboundSpool
from bot.core.store import repository as repo
from bot.core.store.db import bounded
from bot.core.store.models import utcnow
from bot.dashboard.web import auth

logger = logging.getLogger(__name__)

#: The store query's time bound: a monitor (and the launcher, which waits 2 s) needs an answer
#: even when the database hangs.
QUERY_SECONDS = 1.5


@dataclass(frozen=True)
class HealthSources:
    """What the report looks at: the web app's store, the spool its notifier replays, the transports."""

    sessions: sessionmaker
    spool: Spool
    transports: tuple[str, ...]
    alert_after: timedelta


HEALTH = web.AppKey("health", HealthSources)


def _age(now: datetime, since: Optional[datetime]) -> Optional[int]:
    return None if since is None else max(0, int((now - since).total_seconds()))


async def _figures(sources: HealthSources, now: datetime) -> repo.DeliveryFigures:
    async with sources.sessions() as session:
        return await repo.delivery_figures(session, now, sources.alert_after)


async def health_report(sources: HealthSources) -> dict[str, Any]:
    """The health report as JSON-ready data; ``status`` is ``ok`` or ``degraded``."""
    now = utcnow()
    problems: list[str] = []
    figures: Optional[repo.DeliveryFigures] = None
    try:
        figures = await bounded(_figures(sources, now), QUERY_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure to read the store is "unavailable"
        logger.warning("health check: database unavailable (%s)", type(exc).__name__)
        problems.append("database_unavailable")
    spool = sources.spool.status()
    report: dict[str, Any] = {
        "database": "unavailable" if figures is None else "ok",
        "notifications": {"transports": list(sources.transports)},
        "escalations": {},
        "spool": {
            "backlog": spool.backlog,
            "unreadable": spool.unreadable,
            "replay_failures": spool.replay_failures,
            "last_replay_error_at": spool.last_replay_error_at.isoformat() if spool.last_replay_error_at else None,
        },
    }
    if figures is not None:
        oldest_undelivered = _age(now, figures.oldest_urgent_undelivered)
        report["notifications"].update(
            urgent_undelivered=figures.urgent_undelivered,
            oldest_urgent_undelivered_seconds=oldest_undelivered,
            dead_letters=figures.dead,
        )
        report["escalations"].update(
            urgent_untold=figures.urgent_untold,
            oldest_urgent_untold_seconds=_age(now, figures.oldest_urgent_untold),
        )
        if oldest_undelivered is not None and oldest_undelivered > sources.alert_after.total_seconds():
            problems.append("urgent_notification_overdue")
        if figures.urgent_untold:
            problems.append("urgent_escalation_untold")
    if spool.backlog and spool.last_replay_error_at and now - spool.last_replay_error_at <= sources.alert_after:
        problems.append("spool_not_draining")
    # Texts the SMS channel could not hand to the store (bot/core/messaging/inbound_spool.py, same folder);
    # the Rasa server replays them, so one waiting past the alert time means that replay is stuck.
    texts = InboundSpool(sources.spool.directory)
    oldest_text = _age(now, texts.oldest())
    report["sms_spool"] = {"backlog": texts.pending(), "oldest_seconds": oldest_text}
    if oldest_text is not None and oldest_text > sources.alert_after.total_seconds():
        problems.append("sms_spool_not_draining")
    warnings = [] if sources.transports else ["no_staff_notification_transport"]
    if spool.unreadable:
        # Kept aside for a person to recover by hand; nothing automatic will store them.
        warnings.append("spool_unreadable_lines")
    return {"status": "degraded" if problems else "ok", "problems": problems, "warnings": warnings, **report}


#: Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its socket says.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP", "X-Forwarded-Host")


def is_local_monitor(request: web.Request) -> bool:
    """Whether the request comes from this machine itself, not through a proxy."""
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _answer(report: dict[str, Any], detail: bool) -> web.Response:
    status = 200 if report["status"] == "ok" else 503
    return web.json_response(report if detail else {"status": report["status"]}, status=status)


async def healthz(request: web.Request) -> web.Response:
    """Database reachability and whether staff can be told of urgent escalations (503 when not).

    The figures go to a local monitor or signed-in staff only (module docstring).
    """
    report = await health_report(request.app[HEALTH])
    detail = is_local_monitor(request) or await auth.identify(request) is not None
    return _answer(report, detail)


async def staff_health(request: web.Request) -> web.Response:
    """GET /staff/api/health: the whole report for signed-in staff (the dashboard's cookie reaches here)."""
    return _answer(await health_report(request.app[HEALTH]), True)
