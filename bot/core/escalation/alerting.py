"""Whether an urgent escalation reaches someone now: the one check behind "I've alerted the team".

A patient who reports a red flag is told the clinic team was alerted only when all of
these hold at that moment:

* someone is there to read it: the clinic is open (:meth:`bot.core.clinic.Clinic.is_open`:
  opening hours, bank holidays, closures), or the on-call route works
  (:func:`bot.core.escalation.on_call.route_problems`: ``on_call`` in ``clinic.yml`` names a
  contact reachable on a configured channel, the notifier is sending its rounds and that
  channel is delivering). Out of hours without a working on-call route the route is
  ``closed`` and the patient is told when the team will see it
  (:meth:`bot.core.clinic.Clinic.opening_text`);
* an alert transport is configured (email or webhook, :func:`bot.core.escalation.service.transports`);
* the notifier (:mod:`bot.dashboard.notify.worker`) is delivering on at least one of them, as the
  outbox records it: no urgent notification unsent for longer than ``overdue_after``
  (``URGENT_NOTIFY_ALERT_SECONDS``, the health check's threshold), no notification due
  that long without being claimed (the notifier is not running), and the transport's
  latest delivery attempt did not fail (its latest failure is not more recent than its
  latest delivery). A working on-call route also counts while the clinic is open.

The store read is bounded (:func:`bot.core.store.db.bounded`): a store that does not answer in
time leaves nobody able to vouch for the route, so it counts as not working. The first
urgent notification ever queued has no history to judge: no recorded failure counts as
delivering (the health check covers a notifier that never runs, once a message waits).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable, Optional, Sequence

from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic, OnCall
from bot.core.escalation import on_call
from bot.core.escalation.delivery import transport_problem
from bot.core.store.db import bounded
from bot.core.store.models import utcnow

logger = logging.getLogger(__name__)

#: Longest wait for the outbox read: the patient has the emergency guidance and waits for this
#: sentence; the action server's whole call is bounded by ``ACTION_TIMEOUT_SECONDS`` (3 s).
CHECK_SECONDS = 1.0


class Route(str, enum.Enum):
    """What the urgent alert route does now."""

    #: Staff are told now: the clinic is open and a transport is delivering, or the on-call route works.
    alerting = "alerting"
    #: The clinic is shut: the team sees the escalation when it opens.
    closed = "closed"
    #: No transport, the notifier not delivering, or nobody can tell (store slow, hours unknown).
    not_working = "not_working"


@dataclass(frozen=True)
class AlertCheck:
    """The route's state now, why it is not alerting, and the next opening when closed."""

    route: Route
    problems: tuple[str, ...] = ()
    #: The next opening as a patient reads it ("08:00 on Monday"), when ``route`` is closed.
    opens: Optional[str] = None


class UrgentAlertRoute:
    """Checks, when asked, whether an urgent escalation stored now reaches someone now."""

    def __init__(
        self,
        sessions: sessionmaker,
        transports: Iterable[str],
        clinic: Optional[Clinic],
        *,
        overdue_after: timedelta,
        timeout: float = CHECK_SECONDS,
        clock: Callable[[], datetime] = utcnow,
        on_call_channels: Iterable[str] = (),
    ) -> None:
        self.sessions = sessions
        self.transports = tuple(transports)
        self.clinic = clinic
        self.overdue_after = overdue_after
        self.timeout = timeout
        self.clock = clock
        #: ``sms``/``email``: the channels on-call alerts can go on here (:func:`on_call.channels_of`).
        self.on_call_channels = frozenset(on_call_channels)

    @property
    def on_call(self) -> OnCall:
        return self.clinic.on_call_plan if self.clinic is not None else OnCall()

    async def check(self) -> AlertCheck:
        """The route's state now. Never raises: a store that fails or is slow is "not working"."""
        now = self.clock()
        if self.clinic is None:
            return AlertCheck(Route.not_working, ("clinic_hours_unknown",))
        is_open = self.clinic.is_open(now)
        with_on_call = on_call.usable(self.on_call, self.on_call_channels)
        if not is_open and not with_on_call:
            return self._closed(now, ())
        if is_open and not self.transports and not with_on_call:
            return AlertCheck(Route.not_working, ("no_transport",))
        try:
            problems, on_call_problems = await bounded(self._problems(now, is_open, with_on_call), self.timeout)
        except Exception as exc:  # noqa: BLE001 - any failure to read the outbox leaves the route unverified
            logger.warning("could not check the urgent alert route (%s)", type(exc).__name__)
            return AlertCheck(Route.not_working, ("store_unavailable",))
        if with_on_call and not on_call_problems:
            return AlertCheck(Route.alerting, tuple(problems) + (() if is_open else ("clinic_closed",)))
        if not is_open:
            return self._closed(now, on_call_problems)
        if not self.transports or len(problems) == len(self.transports):
            found = tuple(problems or ("no_transport",)) + tuple(on_call_problems)
            logger.warning("urgent alert route not delivering: %s", ", ".join(found))
            return AlertCheck(Route.not_working, found)
        return AlertCheck(Route.alerting, tuple(problems) + tuple(on_call_problems))

    def _closed(self, now: datetime, on_call_problems: Sequence[str]) -> AlertCheck:
        opens = self.clinic.opening_text(now)
        if opens is None:
            return AlertCheck(Route.not_working, ("clinic_hours_unknown", *on_call_problems))
        if on_call_problems:
            logger.warning("on-call route not working: %s", ", ".join(on_call_problems))
        return AlertCheck(Route.closed, ("clinic_closed", *on_call_problems), opens)

    async def _problems(self, now: datetime, is_open: bool, with_on_call: bool) -> tuple[list[str], Sequence[str]]:
        async with self.sessions() as session:
            found = []
            if is_open:
                found = [await transport_problem(session, name, now, self.overdue_after) for name in self.transports]
            on_call_problems: Sequence[str] = ()
            if with_on_call:
                on_call_problems = await on_call.route_problems(
                    session, self.on_call, self.on_call_channels, now, self.overdue_after
                )
        return [problem for problem in found if problem], on_call_problems
