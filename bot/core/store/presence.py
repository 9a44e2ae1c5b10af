"""Whether anyone from the clinic is signed in to the dashboard right now.

The assistant offers "reply in this chat" only while this is true, so it never
promises a reply nobody is there to write. A session counts while it is live:
not signed out, and active within the idle timeout that was in force when it
was last used (the deadline is stored on the session row, so the action server
needs no dashboard settings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy.orm import sessionmaker

from bot.core import clock
from bot.core.store import staff_sessions


async def staff_signed_in(sessions: sessionmaker, now: Optional[datetime] = None) -> bool:
    """True while at least one enabled staff account has a live dashboard session."""
    async with sessions() as session:
        return await staff_sessions.any_live(session, now or clock.now())
