"""A flood of invented red flags must not bury real cases: urgent escalations per client address are capped.

One REST message from an invented sender used to make one urgent escalation with no
contact details, so a script could fill the queue with urgent cases in seconds. Here:

* the channels put a keyed hash of the client address in the message's metadata
  (:func:`with_client_key`; the address itself is never stored), and the escalation
  record carries it (``EscalationInput.client_key``);
* a new urgent escalation without contact details (*unverified*: no contact detail and
  not a text message, whose number staff can text back) counts against its address's
  cap, ``URGENT_PER_ADDRESS_PER_HOUR`` (5) in the last hour;
* past the cap the escalation is not dropped: it goes into the address's one open
  "possible abuse" case (reason ``emergency``, urgent, ``possible_abuse`` set), each
  message's turns attached with its conversation id, and the count kept in
  ``occurrences``. Creating that case notifies staff through the outbox like any urgent
  case (the payload says ``possible_abuse``), is audited (``urgent_cap_reached``) and logged;
* the patient is answered exactly as before: the urgent guidance never depends on this,
  and escalations with contact details, repeats in a conversation that already has its
  urgent case, and messages from other addresses are never grouped.

The count is in the store, so several processes agree: an upsert on the address's
``escalation_sources`` row takes that row's lock (PostgreSQL) or the write lock
(SQLite) before the address's urgent escalations of the last hour are counted, in the
same transaction that then creates the escalation.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Optional

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.channel_names import MESSAGING
from bot.core.store import repository as repo
from bot.core.store.models import AuditKind, Escalation, EscalationSource, Priority
from bot.core.store.repository import EscalationInput

logger = logging.getLogger(__name__)

#: The metadata key the channels set (and overwrite: a client cannot choose its own key).
METADATA_KEY = "client_key"
#: Sender id of an address's grouped case: this prefix and the start of its key.
GROUP_PREFIX = "flood-"
#: Messages whose turns are attached to one grouped case; past it only ``occurrences`` counts
#: them (every conversation stays whole in the tracker store).
ATTACHED_LIMIT = 200
#: Channels whose patients staff can reach without contact details (they text back the number).
MESSAGING_CHANNELS = MESSAGING
WINDOW = timedelta(hours=1)
KEY_SHAPE = re.compile(r"^[0-9a-f]{32}$")


def client_key(address: Optional[str], secret: str) -> Optional[str]:
    """The keyed hash of a client address (an IPv6 address counts as its /64), or ``None`` without one."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        normalised = address.strip().lower()
    else:
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        normalised = str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)
    return hmac.new(secret.encode(), b"client-address:" + normalised.encode(), hashlib.sha256).hexdigest()[:32]


def with_client_key(metadata: Optional[dict[str, Any]], address: Optional[str], secret: str) -> dict[str, Any]:
    """``metadata`` with the channel's own client key in it (whatever key the client sent is replaced)."""
    result = {k: v for k, v in (metadata or {}).items() if k != METADATA_KEY}
    key = client_key(address, secret)
    if key is not None:
        result[METADATA_KEY] = key
    return result


def client_key_of(state: Mapping[str, Any]) -> Optional[str]:
    """The client key in the tracker state's latest message (as the channel set it), if any."""
    metadata = (state.get("latest_message") or {}).get("metadata")
    key = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
    return key if isinstance(key, str) and KEY_SHAPE.match(key) else None


def unverified(channel: Optional[str], has_contact: bool) -> bool:
    """No way for staff to reach the patient: no contact detail, and not a text message."""
    return not has_contact and (channel or "") not in MESSAGING_CHANNELS


@dataclass(frozen=True)
class Routed:
    """Where an escalation goes: as it is, or into its address's grouped case (``capped``)."""

    data: EscalationInput
    capped: bool = False
    created_last_hour: int = 0


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert  # type: ignore[union-attr]


async def count_source(session: AsyncSession, key: str, now: datetime) -> int:
    """Record one urgent attempt from ``key``, holding its row until the transaction ends; the running total."""
    table = EscalationSource.__table__
    statement = _insert(session)(table).values(client_key=key, first_at=now, last_at=now, attempts=1)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["client_key"], set_={"last_at": now, "attempts": table.c.attempts + 1}
        )
    )
    query = select(EscalationSource.attempts).where(EscalationSource.client_key == key)
    return (await session.execute(query)).scalar_one()


async def urgent_created_since(session: AsyncSession, key: str, since: datetime) -> int:
    """Urgent escalations (not grouped cases) created from ``key`` since ``since``."""
    query = select(func.count()).select_from(Escalation).where(
        Escalation.client_key == key,
        Escalation.priority == Priority.urgent,
        Escalation.possible_abuse.is_(False),
        Escalation.created_at >= since,
    )
    return (await session.execute(query)).scalar_one()


class FloodGuard:
    """Routes urgent escalations past their address's cap into one grouped case."""

    def __init__(self, per_hour: int) -> None:
        if per_hour < 1:
            raise ValueError("the cap allows at least one urgent escalation an hour")
        self.per_hour = per_hour

    async def route(self, session: AsyncSession, data: EscalationInput, now: datetime) -> Routed:
        """Where ``data`` goes; call it first in the transaction that stores the escalation."""
        key = data.client_key
        if (
            data.possible_abuse or data.priority != Priority.urgent or key is None
            or not unverified(data.channel, bool(data.contact_detail))
        ):
            return Routed(data)
        await count_source(session, key, now)
        if await repo.find_escalation(session, data.sender_id, data.reason) is not None:
            return Routed(data)  # a repeat in a conversation that has its urgent case: merged there
        created = await urgent_created_since(session, key, now - WINDOW)
        if created < self.per_hour:
            return Routed(data)
        grouped = await self._grouped(session, data, key)
        return Routed(grouped, capped=True, created_last_hour=created)

    async def _grouped(self, session: AsyncSession, data: EscalationInput, key: str) -> EscalationInput:
        sender_id = GROUP_PREFIX + key[:24]
        existing = await repo.find_escalation(session, sender_id, data.reason)
        attach = existing is None or (existing.occurrences or 1) < ATTACHED_LIMIT
        return EscalationInput(
            sender_id=sender_id,
            channel=data.channel,
            reason=data.reason,
            priority=Priority.urgent,
            trigger={**data.trigger, "possible_abuse": True, "conversation": data.sender_id,
                     "cap_per_hour": self.per_hour},
            transcript=[{**turn, "conversation": data.sender_id} for turn in data.transcript] if attach else [],
            client_key=key,
            possible_abuse=True,
        )

    async def record_cap_reached(self, session: AsyncSession, escalation_id: str, routed: Routed) -> None:
        """Audit and log that an address passed its cap (once per grouped case: when it is created)."""
        detail = {"cap_per_hour": self.per_hour, "created_last_hour": routed.created_last_hour}
        await repo.add_audit(
            session, AuditKind.urgent_cap_reached, escalation_id=escalation_id,
            sender_id=routed.data.sender_id, detail=detail,
        )
        logger.warning(
            "one client address passed its cap of %d urgent escalations an hour; further ones are grouped "
            "into possible-abuse case %s", self.per_hour, escalation_id,
        )
