"""Security headers on every response of the web app, error pages included.

The demo page embeds the widget exactly as a clinic's site would; the policy
allows what the widget needs and nothing else: its own script, stylesheet and
language files from this origin, and connections to the Rasa server (HTTP for
socket.io polling, WebSocket for the live connection). Nothing inline runs,
the page cannot be framed, and no referrer leaves with a patient's click.
"""

from __future__ import annotations

from aiohttp import web

from bot.settings import Settings, origin_of


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


def security_headers(settings: Settings) -> dict[str, str]:
    """Headers added to every response."""
    return {
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

    async def add_headers(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(headers)

    app.on_response_prepare.append(add_headers)
