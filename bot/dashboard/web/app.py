"""The web app (port 8000): demo clinic page with the chat widget, widget assets, health.

An app factory in the aiohttp-demos style: ``create_app(settings)``; the
engine and the staff-notification worker live in ``cleanup_ctx``. Security
headers are added to every response (:mod:`bot.dashboard.web.security`), and only the
files listed in :func:`public_assets` are served from ``static/``: no
directory listing, no source files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.core.clinic import load_clinic
from bot.core.escalation.service import EscalationService, staff_can_be_notified
from bot.core.settings import Settings
from bot.core.store.db import create_engine, session_factory
from bot.dashboard.notify.worker import Notifier
from bot.dashboard.web import admin_users, api, auth, bodies, display, handoff_routes, login, pages, security
from bot.dashboard.web import push_routes
from bot.dashboard.web.health import HEALTH, HealthSources, healthz, staff_health
from bot.dashboard.web.keys import CLINIC, DB, ENGINE, SETTINGS

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ASSETS = web.AppKey("assets", frozenset)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Plain, escaped error pages; unexpected errors are logged, not shown."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(request, exc.status, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - the boundary: log it, answer 500
        logger.exception("error serving %s %s", request.method, request.path)
        return error_response(request, 500, "Internal Server Error")


def error_response(request: web.Request, status: int, reason: str) -> web.Response:
    """A plain error answer; JSON under the staff API."""
    if auth.is_api(request):
        return web.json_response({"error": reason}, status=status)
    return web.Response(status=status, text=f"{status}: {reason}", content_type="text/plain")


@aiohttp_jinja2.template("demo.html")
async def demo_page(request: web.Request) -> dict:
    """The demo clinic page with the widget embedded as a clinic would embed it."""
    settings = request.app[SETTINGS]
    return {
        "clinic": request.app[CLINIC],
        "widget_src": "/static/widget/chat-widget.js",
        "widget_css": "/static/widget/chat-widget.css",
        "demo_css": "/static/demo.css",
        "rasa_url": settings.public_rasa_url,
    }


def public_assets(static: Path = STATIC) -> frozenset[str]:
    """The files under ``static/`` that browsers may fetch: the widget, its languages, the demo stylesheet."""
    listed = {"widget/chat-widget.js", "widget/chat-widget.css", "demo.css"}
    listed.update(f"widget/i18n/{path.name}" for path in (static / "widget" / "i18n").glob("*.js"))
    return frozenset(listed)


async def static_file(request: web.Request) -> web.FileResponse:
    """One of the public assets; anything else under ``/static/`` is a 404."""
    name = request.match_info["name"]
    if name not in request.app[ASSETS]:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name)


NOTIFIER_STOP_SECONDS = 15.0


async def store_and_notifier(app: web.Application) -> AsyncIterator[None]:
    """Engine lifetime, and the notification worker running beside the app."""
    settings = app[SETTINGS]
    engine = create_engine(settings.database_url)
    app[ENGINE] = engine
    sessions = session_factory(engine)
    app[DB] = sessions
    escalations = EscalationService.from_settings(settings, sessions)
    alert_after = timedelta(seconds=settings.urgent_notify_alert_seconds)
    app[HEALTH] = HealthSources(sessions, escalations.spool, tuple(escalations.transports), alert_after)
    if not staff_can_be_notified(settings):
        logger.warning(
            "no staff notification transport is configured (SMTP_HOST and NOTIFY_EMAIL_TO, or NOTIFY_WEBHOOK_URL): "
            "escalations are stored but nobody is told; /healthz degrades when an urgent one waits"
        )
    async with aiohttp.ClientSession() as http:
        notifier = Notifier(settings, app[CLINIC], sessions, escalations, http)
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run_forever(stop), name="notifier")
        yield
        # Let a pass under way finish: cancelling it mid-query can leave a database call behind.
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=NOTIFIER_STOP_SECONDS)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await engine.dispose()


def create_app(settings: Settings) -> web.Application:
    """Build the web application."""
    app = web.Application(middlewares=[error_pages, bodies.readable_bodies], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[CLINIC] = load_clinic(settings.clinic_config)
    app[ASSETS] = public_assets()
    security.install(app, settings)
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=jinja2.select_autoescape(default=True)
    )
    app.router.add_get("/", demo_page, name="demo")
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/staff/api/health", staff_health, name="staff_api_health")
    app.router.add_get("/static/{name:.+}", static_file, name="static")
    auth.setup(app)
    login.setup(app)
    admin_users.setup(app)
    api.setup(app)
    pages.setup(app)
    display.setup(app)
    handoff_routes.setup(app)
    push_routes.setup(app)
    app.cleanup_ctx.append(store_and_notifier)
    return app
