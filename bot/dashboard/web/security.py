"""Security headers on every response of the web app, error pages included.

The demo page embeds the widget exactly as a clinic's site would; the policy
allows what the widget needs and nothing else: its own script, stylesheet and
language files from this origin, and connections to the Rasa server (HTTP for
socket.io polling, WebSocket for the live connection). Nothing inline runs,
the page cannot be framed, and no referrer leaves with a patient's click.

The staff dashboard (``/staff``) gets a stricter policy still: it talks only to
its own origin (no Rasa server), and its pages and API answers carry patient data,
so no browser or proxy may keep a copy (``Cache-Control: no-store``); only its
static assets may be cached.
"""

from __future__ import annotations

from aiohttp import web

from bot.core.settings import Settings, origin_of


def rasa_origins(public_rasa_url: str) -> list[str]:
    """The Rasa server's origins as the browser reaches it: HTTP(S) and the matching WS(S)."""
    origin = origin_of(public_rasa_url)
    if not origin:
        return []
    secure = origin.startswith("https://")
    return [origin, ("wss://" if secure else "ws://") + origin.split("://", 1)[1]]


def content_security_policy(settings: Settings) -> str:
    """The page's Content-Security-Policy."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", *rasa_origins(settings.public_rasa_url)],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def staff_content_security_policy() -> str:
    """The dashboard's policy: everything from this origin only, nothing inline, no framing."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def is_dashboard(path: str) -> bool:
    """Whether ``path`` is the staff dashboard's."""
    return path == "/staff" or path.startswith("/staff/")


#: The ``Server`` header every response carries: no framework or version for a scanner to match.
SERVER_NAME = "clinic-assistant"


def security_headers(settings: Settings) -> dict[str, str]:
    """Headers added to every response."""
    return {
        "Server": SERVER_NAME,
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }


def install(app: web.Application, settings: Settings) -> None:
    """Add the headers to every response the app prepares.

    A response-prepare hook rather than a middleware: it also reaches responses
    that never pass through the middleware chain (static files, errors that
    aiohttp raises itself).
    """
    headers = security_headers(settings)
    staff_headers = {**headers, "Content-Security-Policy": staff_content_security_policy()}
    staff_private = {**staff_headers, "Cache-Control": "no-store"}

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        if not is_dashboard(request.path):
            response.headers.update(headers)
        elif request.path.startswith("/staff/static/"):
            response.headers.update(staff_headers)
        else:
            response.headers.update(staff_private)

    app.on_response_prepare.append(add_headers)
