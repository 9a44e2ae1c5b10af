"""Web Push on the dashboard: the service worker, the VAPID public key, and each browser's subscription.

Routes (behind :mod:`bot.dashboard.web.auth`: a signed-in account; unsafe methods need the
session's CSRF token):

- ``GET /staff/sw.js``: the service worker (static/staff/sw.js). Served from ``/staff/``, so
  its scope may be the whole dashboard without a ``Service-Worker-Allowed`` header; never
  cached, so a new version reaches browsers at once.
- ``GET /staff/api/push-subscriptions``: what a page needs to subscribe: the VAPID public key
  (``applicationServerKey``; ``null`` while Web Push is off: no key made by ``make secrets``,
  or no contact address in clinic.yml), the service worker's address and its scope.
- ``POST /staff/api/push-subscriptions``: the browser's ``PushSubscription.toJSON()``; it
  becomes the signed-in account's (a browser that was another account's moves to this one).
- ``DELETE /staff/api/push-subscriptions``: ``{"endpoint": ...}``; the account's subscription
  of that browser is removed (alerts.js does it when browser notifications are turned off).

A subscription belongs to the account, not to the session: the point is to be told with the
tab closed, after the session has idled out. Signing out leaves it; turning "Browser
notifications" off in the Alerts settings removes it (and the sender skips accounts with
notifications off or disabled), and so does a push service answering 404/410.

An endpoint is a capability and is never logged; only https endpoints are accepted, or plain
http while the dashboard itself is served over plain http (a development setup).
"""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import delete, select

from bot.core.store.models import PushSubscription, utcnow
from bot.dashboard.notify import web_push
from bot.dashboard.web.auth import STAFF, StaffIdentity
from bot.dashboard.web.keys import CLINIC, DB, SETTINGS
from bot.dashboard.web.urls import url_for

logger = logging.getLogger(__name__)

SERVICE_WORKER = Path(__file__).resolve().parent / "static" / "staff" / "sw.js"
SCOPE = "/staff/"
#: The VAPID public key browsers subscribe with, or ``None`` while Web Push is off.
PUBLIC_KEY = web.AppKey("push_public_key", object)
ROUTE = "staff_api_push_subscriptions"
SW_ROUTE = "staff_sw"
MAX_ENDPOINT = 2048
#: Lengths of the browser's keys once decoded: an uncompressed P-256 point, a 16-byte auth secret.
P256DH_BYTES, AUTH_BYTES = 65, 16


class InvalidSubscription(ValueError):
    """The body is not a usable push subscription."""


def decoded(value: Any) -> bytes:
    """A base64url value (padding optional) as bytes; :class:`InvalidSubscription` when it is not."""
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidSubscription("keys must be base64url strings")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSubscription("keys must be base64url strings") from None


def endpoint_of(body: Any, allow_http: bool) -> str:
    """The subscription's endpoint: an absolute https URL (http too while ``allow_http``)."""
    endpoint = body.get("endpoint") if isinstance(body, dict) else None
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT:
        raise InvalidSubscription("endpoint must be a URL")
    parts = urlsplit(endpoint)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        raise InvalidSubscription("endpoint must be an https URL")
    return endpoint


def parse(body: Any, allow_http: bool) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) of a ``PushSubscription.toJSON()`` body, checked."""
    endpoint = endpoint_of(body, allow_http)
    keys = body.get("keys")
    if not isinstance(keys, dict):
        raise InvalidSubscription("keys are missing")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    point = decoded(p256dh)
    if len(point) != P256DH_BYTES or point[0] != 4:
        raise InvalidSubscription("p256dh must be an uncompressed P-256 point")
    if len(decoded(auth)) != AUTH_BYTES:
        raise InvalidSubscription("auth must be 16 bytes")
    return endpoint, p256dh, auth


def allows_http(request: web.Request) -> bool:
    """Plain-http endpoints only while the dashboard itself is plain http (development)."""
    return request.app[SETTINGS].public_web_url.lower().startswith("http://")


def bad_request(message: str) -> web.Response:
    return web.json_response({"error": "bad_request", "message": message}, status=400)


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


async def service_worker(request: web.Request) -> web.FileResponse:
    """The service worker script, never cached."""
    return web.FileResponse(
        SERVICE_WORKER,
        headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache"},
    )


async def push_config(request: web.Request) -> web.Response:
    """The VAPID public key (``null`` while Web Push is off), the service worker and its scope."""
    return web.json_response({
        "public_key": request.app[PUBLIC_KEY],
        "service_worker": url_for(request, SW_ROUTE),
        "scope": SCOPE,
    })


async def subscribe(request: web.Request) -> web.Response:
    """Store the browser's subscription as the signed-in account's (201 new, 200 updated)."""
    if request.app[PUBLIC_KEY] is None:
        return web.json_response({"error": "unavailable", "message": "Web Push is off on this server."}, status=409)
    try:
        endpoint, p256dh, auth = parse(await json_body(request), allows_http(request))
    except InvalidSubscription as exc:
        return bad_request(str(exc))
    identity: StaffIdentity = request[STAFF]
    async with request.app[DB]() as session, session.begin():
        row = (await session.execute(
            select(PushSubscription).where(PushSubscription.endpoint == endpoint)
        )).scalar_one_or_none()
        created = row is None
        if row is None:
            row = PushSubscription(endpoint=endpoint)
            session.add(row)
        elif row.user_id != identity.id:
            # The same browser, now another account's: it is told as that account from now on.
            logger.info("a push subscription moved from account %s to account %s", row.user_id, identity.id)
        row.user_id, row.p256dh, row.auth, row.failures = identity.id, p256dh, auth, 0
        if created:
            row.created_at = utcnow()
    return web.json_response({"subscribed": True}, status=201 if created else 200)


async def unsubscribe(request: web.Request) -> web.Response:
    """Remove the account's subscription of this browser (204, also when there was none)."""
    try:
        endpoint = endpoint_of(await json_body(request), allow_http=True)
    except InvalidSubscription as exc:
        return bad_request(str(exc))
    identity: StaffIdentity = request[STAFF]
    async with request.app[DB]() as session, session.begin():
        await session.execute(delete(PushSubscription).where(
            PushSubscription.endpoint == endpoint, PushSubscription.user_id == identity.id
        ))
    return web.Response(status=204)


def public_key(app: web.Application) -> Optional[str]:
    """The VAPID public key when pushes can be sent (a key and a contact), else ``None``. Never makes a key."""
    settings = app[SETTINGS]
    vapid = web_push.load_vapid(settings.var_dir)
    if vapid is None or web_push.subject(app[CLINIC], settings) is None:
        return None
    return web_push.application_server_key(vapid)


def setup(app: web.Application) -> None:
    """Register the service worker and the subscription routes."""
    app[PUBLIC_KEY] = public_key(app)
    app.router.add_get("/staff/sw.js", service_worker, name=SW_ROUTE)
    resource = app.router.add_resource("/staff/api/push-subscriptions", name=ROUTE)
    resource.add_route("GET", push_config)
    resource.add_route("POST", subscribe)
    resource.add_route("DELETE", unsubscribe)
