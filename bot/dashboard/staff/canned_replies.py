"""Canned replies: short texts staff insert in the reply box by typing "/" and a shortcut.

Admins list, create, change and delete them (the page ``/staff/admin/canned-replies``,
:mod:`bot.dashboard.web.canned_replies`); every staff member reads them to insert. They live
in the ``canned_replies`` table. When the dashboard starts with the table empty, it is
filled from ``data/staff/canned_replies.yml`` (the clinic's defaults: "call 999 now", a
call-back, a "we'll text you"), which is a data file so a clinic changes its wording
without code.

A shortcut is what is typed after "/": lower case letters, digits and ``-``, unique.
Functions take the session first; the caller owns the transaction.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.store.models import CannedReply, utcnow

logger = logging.getLogger(__name__)

#: The defaults a new clinic starts with.
DEFAULTS_FILE = Path(__file__).resolve().parents[3] / "data" / "staff" / "canned_replies.yml"
MAX_SHORTCUT = 32
MAX_TITLE = 80
#: The reply box takes up to 2,000 characters (bot/dashboard/staff/takeover.py's limit).
MAX_BODY = 2000
MAX_REPLIES = 200
MAX_POSITION = 10_000
SHORTCUT = re.compile(rf"^[a-z0-9-]{{1,{MAX_SHORTCUT}}}$")


class CannedReplyError(ValueError):
    """A canned reply cannot be saved as asked (the message is safe to show)."""


class ReplyNotFound(CannedReplyError):
    """No canned reply with this id."""


@dataclass(frozen=True)
class ReplyView:
    """One canned reply, as staff and admins see it."""

    id: int
    shortcut: str
    title: str
    body: str
    position: int
    updated_at: Optional[datetime]
    updated_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "shortcut": self.shortcut, "title": self.title, "body": self.body,
            "position": self.position, "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class ReplyFields:
    """Checked fields of a canned reply."""

    shortcut: str
    title: str
    body: str
    position: int


def _view(row: CannedReply) -> ReplyView:
    return ReplyView(row.id, row.shortcut, row.title, row.body, row.position, row.updated_at, row.updated_by or "")


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CannedReplyError(f"the {name} is missing")
    text = value.strip().replace("\r\n", "\n")
    if len(text) > limit:
        raise CannedReplyError(f"the {name} is longer than {limit:,} characters")
    return text


def check(shortcut: Any, title: Any, body: Any, position: Any = 0) -> ReplyFields:
    """The fields, trimmed and checked; :class:`CannedReplyError` says what is wrong."""
    if not isinstance(shortcut, str) or not SHORTCUT.match(shortcut.strip().lstrip("/")):
        raise CannedReplyError(
            f"the shortcut must be 1 to {MAX_SHORTCUT} lower-case letters, digits or hyphens (for example call-back)"
        )
    if isinstance(position, str):
        position = int(position) if position.strip().lstrip("-").isdigit() and len(position.strip()) < 7 else None
    if position is None or isinstance(position, bool) or not isinstance(position, int) or not (
        0 <= position <= MAX_POSITION
    ):
        raise CannedReplyError(f"the position must be a whole number from 0 to {MAX_POSITION:,}")
    return ReplyFields(shortcut.strip().lstrip("/"), _text(title, "title", MAX_TITLE), _text(body, "text", MAX_BODY),
                       position)


async def list_replies(session: AsyncSession) -> list[ReplyView]:
    """Every canned reply, in the list's order."""
    rows = await session.execute(select(CannedReply).order_by(CannedReply.position, CannedReply.shortcut))
    return [_view(row) for row in rows.scalars()]


async def _taken(session: AsyncSession, shortcut: str, other_than: Optional[int] = None) -> bool:
    query = select(CannedReply.id).where(CannedReply.shortcut == shortcut)
    if other_than is not None:
        query = query.where(CannedReply.id != other_than)
    return (await session.execute(query)).first() is not None


async def create(session: AsyncSession, fields: ReplyFields, actor: str) -> ReplyView:
    """Add a canned reply; its shortcut must be free."""
    count = (await session.execute(select(func.count()).select_from(CannedReply))).scalar_one()
    if count >= MAX_REPLIES:
        raise CannedReplyError(f"there are already {MAX_REPLIES} canned replies: delete one first")
    if await _taken(session, fields.shortcut):
        raise CannedReplyError(f"the shortcut /{fields.shortcut} is already used")
    row = CannedReply(shortcut=fields.shortcut, title=fields.title, body=fields.body, position=fields.position,
                      updated_at=utcnow(), updated_by=actor)
    session.add(row)
    await session.flush()
    return _view(row)


async def _get(session: AsyncSession, reply_id: int) -> CannedReply:
    row = await session.get(CannedReply, reply_id)
    if row is None:
        raise ReplyNotFound("no such canned reply (someone may have deleted it)")
    return row


async def update(session: AsyncSession, reply_id: int, fields: ReplyFields, actor: str) -> ReplyView:
    """Change a canned reply; a new shortcut must be free."""
    row = await _get(session, reply_id)
    if await _taken(session, fields.shortcut, other_than=reply_id):
        raise CannedReplyError(f"the shortcut /{fields.shortcut} is already used")
    row.shortcut, row.title, row.body, row.position = fields.shortcut, fields.title, fields.body, fields.position
    row.updated_at, row.updated_by = utcnow(), actor
    await session.flush()
    return _view(row)


async def delete(session: AsyncSession, reply_id: int) -> str:
    """Delete a canned reply; its shortcut."""
    row = await _get(session, reply_id)
    await session.delete(row)
    await session.flush()
    return row.shortcut


def load_defaults(path: Path = DEFAULTS_FILE) -> list[ReplyFields]:
    """The default replies of the data file, checked (:class:`CannedReplyError` names the bad entry)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("replies") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CannedReplyError(f"{path.name}: 'replies' must list the default replies")
    defaults: list[ReplyFields] = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - {"shortcut", "title", "body"}:
            raise CannedReplyError(f"{path.name}: reply {number + 1} takes shortcut, title and body only")
        try:
            fields = check(str(entry.get("shortcut", "")), entry.get("title"), entry.get("body"), number * 10)
        except CannedReplyError as exc:
            raise CannedReplyError(f"{path.name}: reply {number + 1}: {exc}") from None
        if any(known.shortcut == fields.shortcut for known in defaults):
            raise CannedReplyError(f"{path.name}: the shortcut {fields.shortcut} is listed twice")
        defaults.append(fields)
    return defaults


async def seed_if_empty(session: AsyncSession, defaults: list[ReplyFields]) -> int:
    """Add ``defaults`` when there is no canned reply yet; how many were added."""
    if (await session.execute(select(CannedReply.id).limit(1))).first() is not None:
        return 0
    for fields in defaults:
        session.add(CannedReply(shortcut=fields.shortcut, title=fields.title, body=fields.body,
                                position=fields.position, updated_at=utcnow(), updated_by="defaults"))
    await session.flush()
    return len(defaults)
