"""Whether any alert route tells staff of an urgent case, as admins see it on the dashboard.

The check itself is :mod:`bot.core.escalation.alerting` (configured transports, the on-call
route, the notifier delivering, the clinic's hours); this module only builds one per app the
way the escalation service does and turns its answer into the admins' banner. No route
configured at all (no transport, no usable on-call contact: :func:`route_configured`, also
behind ``make run``'s start-up warning) is always a problem; so is a route that is not
delivering; out of hours with nothing failing is not (the team is told when the clinic opens).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

from aiohttp import web

from bot.core.clinic import Clinic
from bot.core.escalation import on_call
from bot.core.escalation.alerting import Route, UrgentAlertRoute
from bot.core.escalation.service import on_call_channels, transports
from bot.core.settings import Settings
from bot.dashboard.web.keys import CLINIC, DB, SETTINGS

#: Holds the app's check once built (a dict, so it can be filled after the app has started).
ROUTE = web.AppKey("staff_urgent_alert_route", dict)

NO_TRANSPORT = ("No alert route is set up: nobody is told of an urgent case unless they are looking at this "
                "dashboard. Set SMTP_HOST and NOTIFY_EMAIL_TO, or NOTIFY_WEBHOOK_URL, or on_call in clinic.yml.")
NOT_DELIVERING = ("Urgent alerts are not reaching anyone now (the notifier or the on-call route is not "
                  "delivering). Check /healthz and the notifier's log.")
HOURS_UNKNOWN = "Urgent alerts cannot be vouched for: the clinic's opening hours are not configured."


def route_configured(settings: Settings, clinic: Optional[Clinic]) -> bool:
    """Whether any alert route is set up: a notification transport, or an on-call contact reachable here."""
    if transports(settings):
        return True
    return clinic is not None and on_call.usable(clinic.on_call_plan, on_call_channels(settings))


def route_of(app: web.Application) -> UrgentAlertRoute:
    """The app's alert route check, built on first use from its settings, store and clinic."""
    holder = app[ROUTE]
    if "route" not in holder:
        settings = app[SETTINGS]
        holder["route"] = UrgentAlertRoute(app[DB], transports(settings), app.get(CLINIC),
                                           overdue_after=timedelta(seconds=settings.urgent_notify_alert_seconds),
                                           on_call_channels=on_call_channels(settings))
    return holder["route"]


async def route_problem(request: web.Request) -> Optional[str]:
    """The admins' banner sentence while no alert route works, else ``None``."""
    app = request.app
    if not route_configured(app[SETTINGS], app.get(CLINIC)):
        return NO_TRANSPORT
    check = await route_of(app).check()
    if "clinic_hours_unknown" in check.problems:
        return HOURS_UNKNOWN
    if check.route is Route.not_working or (check.route is Route.closed and set(check.problems) - {"clinic_closed"}):
        return NOT_DELIVERING
    return None


def setup(app: web.Application) -> None:
    """Make room for the app's check (built on first use: the store opens when the app starts)."""
    app[ROUTE] = {}
