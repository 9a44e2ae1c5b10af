"""aiohttp-session storage kept in the escalation store (the rows of :mod:`bot.core.store.staff_sessions`).

The cookie carries only a random key; the row holds the account, the CSRF token and
the activity deadlines. Cookie: ``HttpOnly``, ``SameSite=Strict``, ``Path=/staff``,
``Secure`` when ``PUBLIC_WEB_URL`` is https, and no ``Max-Age`` (it goes when the
browser closes; the server ends it earlier when idle). Several web replicas share the
store, so a session started on one is known to all.

Use it through aiohttp-session: ``new_session(request)`` then ``session["user_id"] = ...``
signs in (a new key and row); ``session.invalidate()`` signs out (the row is ended,
the cookie deleted). Other keys set on the session are kept in the row's ``data``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

from aiohttp import web
from aiohttp_session import AbstractStorage, Session

from bot.core import clock
from bot.core.settings import Settings
from bot.core.store import staff_sessions
from bot.core.store.staff_sessions import LiveSession
from bot.dashboard.web.keys import DB

COOKIE_NAME = "staff_session"
COOKIE_PATH = "/staff"
#: The live session this request was loaded with (``None`` when there is none).
LIVE = "staff_live_session"
RESERVED = ("user_id",)


class DatabaseStorage(AbstractStorage):
    """Sessions stored as rows; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            cookie_name=COOKIE_NAME, path=COOKIE_PATH, secure=settings.staff_cookie_secure,
            httponly=True, samesite="Strict", max_age=None,
        )
        self.idle = timedelta(minutes=settings.staff_idle_minutes)
        self.lifetime = timedelta(hours=settings.staff_session_hours)
        #: A reception display's session: no idle deadline, this lifetime (bot/core/store/staff_sessions.py).
        self.unattended_lifetime = timedelta(days=settings.staff_reception_session_days)

    async def load_session(self, request: web.Request) -> Session:
        key = self.load_cookie(request)
        live: Optional[LiveSession] = None
        if key:
            async with request.config_dict[DB]() as db:
                live = await staff_sessions.find_live(db, key, clock.now())
        request[LIVE] = live
        if live is None:
            return Session(None, data=None, new=True, max_age=None)
        data = {**live.data, "user_id": live.user_id}
        return Session(key, data={"created": int(live.created_at.timestamp()), "session": data}, new=False)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        now = clock.now()
        if session.empty:
            if session.identity:
                async with request.config_dict[DB]() as db, db.begin():
                    await staff_sessions.end(db, session.identity, now)
            self.save_cookie(response, "")
            return
        data = {name: value for name, value in session.items() if name not in RESERVED}
        if (session.new or session.identity is None) and "user_id" not in session:
            # Something was kept (a flash message) for a request that has no session, such as
            # one made with an API token: there is nobody to start a session for.
            return
        if session.new or session.identity is None:
            async with request.config_dict[DB]() as db, db.begin():
                key, row = await staff_sessions.start(
                    db, int(session["user_id"]), now=now, idle=self.idle, lifetime=self.lifetime, data=data,
                    unattended_lifetime=self.unattended_lifetime,
                )
            session.set_new_identity(key)
            request[NEW_CSRF] = row.csrf_token
            self.save_cookie(response, key)
            return
        live: Optional[LiveSession] = request.get(LIVE)
        if live is not None:
            async with request.config_dict[DB]() as db, db.begin():
                await staff_sessions.save_data(db, live.id, data)


#: The CSRF token of a session started during this request.
NEW_CSRF = "staff_new_csrf"
