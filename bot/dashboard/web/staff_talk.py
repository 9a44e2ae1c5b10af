"""The HTTP shape shared by every way staff talk to a patient (web chat, SMS/WhatsApp).

Each channel has a service (built per request) whose methods take the escalation id
and the signed-in staff member and raise :class:`~bot.dashboard.staff.takeover.TakeoverError`
for anything staff should be told. :class:`StaffTalk` turns those methods into route
handlers that answer the same way on every channel:

* a JSON request gets the result's ``to_dict()`` (``Cache-Control: no-store``), or
  ``{"error": code, "message": ...}`` with the error's status;
* a plain form post (the conversation page works without script) gets a 303 back to
  the page's block: ``?<done_key>=<word>#<anchor>`` or ``?<error_key>=<code>#<anchor>``
  — always a fixed word, never data the patient or staff wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Optional, Union

import aiohttp
from aiohttp import web

from bot.dashboard.staff.takeover import TakeoverError
from bot.dashboard.web.case_page import CASE_ROUTE
from bot.dashboard.web.keys import SETTINGS
from bot.dashboard.web.urls import url_for

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
NO_STORE = {"Cache-Control": "no-store"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: The word for ``?<done_key>=``: fixed, or chosen from the service's result.
Done = Union[str, Callable[[Any], str]]


def bridge_client(key: web.AppKey, make: Callable[[aiohttp.ClientSession, str, str], Any]
                  ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context keeping a channel's bridge to the Rasa server in ``app[key]`` for the app's
    lifetime: ``make(http, staff_bridge_url, staff_bridge_secret)`` on one HTTP connection pool.

    ``STAFF_BRIDGE_URL`` is the Rasa process's staff-only loopback listener
    (``STAFF_BRIDGE_PORT``), not its patient-facing port, which no longer serves the bridges."""

    async def client(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        async with aiohttp.ClientSession() as http:
            app[key] = make(http, settings.staff_bridge_url, settings.staff_bridge_secret)
            yield

    return client


def is_form(request: web.Request) -> bool:
    return request.content_type in FORMS


async def message_text(request: web.Request) -> Any:
    """The ``text`` field of a form or JSON body; None when there is none (the service says why)."""
    if is_form(request):
        return (await request.post()).get("text")
    try:
        body = await request.json()
    except ValueError:
        return None
    return body.get("text") if isinstance(body, dict) else None


@dataclass(frozen=True)
class StaffTalk:
    """One channel's staff-talk routes: its service, and where its page block answers."""

    service: Callable[[web.Request], Any]
    anchor: str
    done_key: str
    error_key: str

    def page(self, request: web.Request, case_id: str, key: str, value: str) -> web.Response:
        location = url_for(request, CASE_ROUTE, id=case_id, query={key: value}, fragment=self.anchor)
        return web.Response(status=303, headers={"Location": location})

    def error(self, request: web.Request, case_id: str, error: TakeoverError) -> web.Response:
        if is_form(request):
            return self.page(request, case_id, self.error_key, error.code)
        return web.json_response({"error": error.code, "message": error.message}, status=error.status,
                                 headers=NO_STORE)

    def state(self) -> Handler:
        """GET handler: the service's ``state(case_id, staff)`` as JSON."""

        async def handler(request: web.Request) -> web.Response:
            case_id = request.match_info["id"]
            try:
                state = await self.service(request).state(case_id, request["staff"])
            except TakeoverError as error:
                return self.error(request, case_id, error)
            return web.json_response(state.to_dict(), headers=NO_STORE)

        return handler

    def action(self, method: str, done: Done, with_text: bool = False) -> Handler:
        """POST handler calling the service's ``method(case_id, staff[, text])``."""

        async def handler(request: web.Request) -> web.Response:
            case_id = request.match_info["id"]
            args = (await message_text(request),) if with_text else ()
            try:
                result = await getattr(self.service(request), method)(case_id, request["staff"], *args)
            except TakeoverError as error:
                return self.error(request, case_id, error)
            if is_form(request):
                return self.page(request, case_id, self.done_key, done if isinstance(done, str) else done(result))
            return web.json_response(result.to_dict(), headers=NO_STORE)

        return handler

    def outcome(self, request: web.Request, done: Mapping[str, str],
                errors: Mapping[str, str]) -> tuple[Optional[str], Optional[str]]:
        """What the page says after a form post: the sentences for its fixed words, if any."""
        return (done.get(request.query.get(self.done_key, "")),
                errors.get(request.query.get(self.error_key, "")))
