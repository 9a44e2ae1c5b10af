"""Routes for staff talking to a patient themselves (logic: :mod:`bot.dashboard.staff.handoff`).

JSON API, behind the dashboard's authentication and CSRF check like every ``/staff`` route.
The website chat (``static/staff/takeover.js``, ``templates/staff/partials/takeover.html``):

* ``GET  /staff/api/escalations/{id}/takeover``  - who holds the chat, whether the
  patient's chat is open, the lines staff put into it and their delivery;
* ``POST /staff/api/escalations/{id}/takeover``  - take the chat over (pause the assistant);
* ``POST /staff/api/escalations/{id}/messages``  - ``{"text": ...}`` into a chat you hold;
* ``POST /staff/api/escalations/{id}/handback``  - give the chat back to the assistant.

Texting a patient who came in by SMS or WhatsApp (``templates/staff/partials/sms_reply.html``):

* ``GET  /staff/api/escalations/{id}/sms``           - the number, opt-out, WhatsApp window,
  who is texting, and the lines sent with their delivery;
* ``POST /staff/api/escalations/{id}/sms/messages``  - ``{"text": ...}`` to the patient (the
  first one pauses the assistant);
* ``POST /staff/api/escalations/{id}/sms/template``  - the approved WhatsApp template;
* ``POST /staff/api/escalations/{id}/sms/handback``  - give the conversation back to the assistant.

Every channel answers the same way (:class:`StaffTalk`): a JSON request gets the result's
``to_dict()`` (``Cache-Control: no-store``) or ``{"error": code, "message": ...}`` with the
status :data:`ERRORS` gives the domain error; a plain form post (the conversation page works
without script) gets a 303 back to the page's block, ``?<done_key>=<word>#<anchor>`` or
``?<error_key>=<code>#<anchor>``: always a fixed word, never data the patient or staff wrote.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Optional, Union

import aiohttp
from aiohttp import web

from bot.dashboard.staff.cases import CaseDetail
from bot.dashboard.staff.handoff.bridge import Bridge
from bot.dashboard.staff.handoff.errors import (
    ChatServerUnavailable, EscalationNotFound, HandoffError, HeldByColleague, InvalidMessage, NoTemplate, NotHolding,
    NotSms, NotWebChat, OptedOut, WindowClosed,
)
from bot.dashboard.staff.handoff.service import HandoffService
from bot.dashboard.staff.handoff.sms import SmsBridge, sms_handoff
from bot.dashboard.staff.handoff.web_chat import ChatBridge, web_chat_handoff
from bot.dashboard.web import pages
from bot.dashboard.web.case_page import CASE_ROUTE
from bot.dashboard.web.keys import CLINIC, DB, SETTINGS
from bot.dashboard.web.urls import url_for

#: Each domain error's HTTP status and wire code (the first class in an error's MRO found here answers).
ERRORS: dict[type[HandoffError], tuple[int, str]] = {
    EscalationNotFound: (404, "not_found"),
    NotWebChat: (409, "not_web_chat"),
    NotSms: (409, "not_sms"),
    HeldByColleague: (409, "held_by_colleague"),
    NotHolding: (409, "not_holding"),
    OptedOut: (409, OptedOut.reason),
    WindowClosed: (409, WindowClosed.reason),
    NoTemplate: (409, NoTemplate.reason),
    InvalidMessage: (400, "bad_request"),
    ChatServerUnavailable: (503, "chat_server_unavailable"),
    HandoffError: (409, "conflict"),
}

CASE = "/staff/api/escalations/{id:[0-9a-fA-F-]{36}}"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
NO_STORE = {"Cache-Control": "no-store"}
CHAT_BRIDGE = web.AppKey("staff_bridge", Bridge)
SMS_BRIDGE = web.AppKey("sms_staff_bridge", Bridge)
#: How long the conversation page waits to learn whether the patient's chat is open.
PAGE_PRESENCE_SECONDS = 2.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: The word for ``?<done_key>=``: fixed, or chosen from the service's result.
Done = Union[str, Callable[[Any], str]]


def answer_for(error: HandoffError) -> tuple[int, str]:
    """The HTTP status and wire code of a domain error."""
    for kind in type(error).__mro__:
        if kind in ERRORS:
            return ERRORS[kind]
    raise TypeError(f"not a handoff error: {type(error).__name__}")


async def bridges(app: web.Application) -> AsyncIterator[None]:
    """Both channels' bridges to the Rasa server, on one HTTP connection pool, for the app's lifetime.

    ``STAFF_BRIDGE_URL`` is the Rasa process's staff-only loopback listener (``STAFF_BRIDGE_PORT``),
    not its patient-facing port, which does not serve the bridges."""
    settings = app[SETTINGS]
    async with aiohttp.ClientSession() as http:
        app[CHAT_BRIDGE] = ChatBridge(http, settings.staff_bridge_url, settings.staff_bridge_secret)
        app[SMS_BRIDGE] = SmsBridge(http, settings.staff_bridge_url, settings.staff_bridge_secret)
        yield


def chat_service(request: web.Request) -> HandoffService:
    """The website chat's handoff service for this request."""
    return web_chat_handoff(request.app[DB], request.app[CHAT_BRIDGE], request.app[CLINIC])


def sms_service(request: web.Request) -> HandoffService:
    """The SMS/WhatsApp handoff service for this request."""
    app = request.app
    return sms_handoff(app[DB], app[SMS_BRIDGE], app[CLINIC], app[SETTINGS].twilio_whatsapp_template_sid)


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
    """One channel's routes: its service, where its page block answers, and what the page says after a form post."""

    service: Callable[[web.Request], HandoffService]
    anchor: str
    done_key: str
    error_key: str
    #: Sentences for the fixed words of ``?<done_key>=`` and ``?<error_key>=``.
    done: Mapping[str, str]
    errors: Mapping[str, str]

    def page(self, request: web.Request, case_id: str, key: str, value: str) -> web.Response:
        location = url_for(request, CASE_ROUTE, id=case_id, query={key: value}, fragment=self.anchor)
        return web.Response(status=303, headers={"Location": location})

    def error(self, request: web.Request, case_id: str, error: HandoffError) -> web.Response:
        status, code = answer_for(error)
        if is_form(request):
            return self.page(request, case_id, self.error_key, code)
        return web.json_response({"error": code, "message": error.message}, status=status, headers=NO_STORE)

    def state(self) -> Handler:
        """GET handler: the service's ``state(case_id, staff)`` as JSON."""

        async def handler(request: web.Request) -> web.Response:
            case_id = request.match_info["id"]
            try:
                state = await self.service(request).state(case_id, request["staff"])
            except HandoffError as error:
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
            except HandoffError as error:
                return self.error(request, case_id, error)
            if is_form(request):
                return self.page(request, case_id, self.done_key, done if isinstance(done, str) else done(result))
            return web.json_response(result.to_dict(), headers=NO_STORE)

        return handler

    def outcome(self, request: web.Request) -> tuple[Optional[str], Optional[str]]:
        """What the page says after a form post: the sentences for its fixed words, if any."""
        return (self.done.get(request.query.get(self.done_key, "")),
                self.errors.get(request.query.get(self.error_key, "")))


CHAT = StaffTalk(
    chat_service, anchor="takeover", done_key="chat", error_key="chat_error",
    done={
        "taken": "You have the chat. The patient was told you joined.",
        "sent": "Message sent.",
        "kept": "Not delivered: the patient's chat is closed. It will appear if they come back within the hour.",
        "back": "The assistant has the chat again. The patient was told.",
    },
    errors={
        "not_found": "The chat server has no such conversation any more.",
        "not_web_chat": "Only conversations in the website chat can be taken over.",
        "held_by_colleague": "A colleague has this chat. Reload to see who.",
        "not_holding": "You don't hold this chat (the assistant or a colleague has it).",
        "bad_request": "Write a message first (up to 2,000 characters).",
        "chat_server_unavailable": "The chat server did not answer. Nothing was sent; try again.",
    },
)
SMS = StaffTalk(
    sms_service, anchor="sms", done_key="sms", error_key="sms_error",
    done={
        "sent": "Text queued for the patient. Its delivery shows below.",
        "template": "Approved template queued for the patient.",
        "back": "The assistant answers this patient again. They were told by text.",
    },
    errors={
        "opted_out": "Not sent: this patient texted STOP, so nothing can be sent to their number.",
        "whatsapp_window_closed": ("Not sent: WhatsApp allows free text only within 24 hours of the patient's last "
                                   "message."),
        "no_template": "No approved WhatsApp template is configured.",
        "not_sms": "This conversation did not come in by SMS or WhatsApp.",
        "not_found": "The assistant's server has no such conversation any more.",
        "held_by_colleague": "A colleague is texting this patient. Reload to see who.",
        "not_holding": "Nobody is texting this patient: the assistant is answering.",
        "bad_request": "Write a message first (up to 2,000 characters).",
        "chat_server_unavailable": "The assistant's server did not answer. Nothing was sent; try again.",
    },
)


async def chat_context(request: web.Request, detail: CaseDetail) -> dict[str, Any]:
    """The conversation page's takeover block: state (with presence if it comes quickly), and a form post's result."""
    service = chat_service(request)
    case_id, staff = request.match_info["id"], request["staff"]
    state = await service.state(case_id, staff, ask_chat_server=False)
    if state.web_chat:
        try:
            state = await asyncio.wait_for(service.state(case_id, staff), PAGE_PRESENCE_SECONDS)
        except asyncio.TimeoutError:
            state = await service.state(case_id, staff, ask_chat_server=False)
    done, error = CHAT.outcome(request)
    return {"takeover": state.to_dict(), "takeover_done": done, "takeover_error": error}


async def sms_context(request: web.Request, detail: CaseDetail) -> dict[str, Any]:
    """The conversation page's texting block, for SMS and WhatsApp escalations only."""
    service = sms_service(request)
    case_id = request.match_info["id"]
    if not await service.serves(case_id):
        return {}
    try:
        state = await service.state(case_id, request["staff"])
    except HandoffError:
        return {}
    done, error = SMS.outcome(request)
    return {"sms_reply": state.to_dict(), "sms_done": done, "sms_error": error}


def setup(app: web.Application) -> None:
    """Register both channels' routes and their blocks on the conversation page."""
    app.cleanup_ctx.append(bridges)
    pages.add_case_context(app, chat_context)
    pages.add_case_context(app, sms_context)
    router = app.router
    router.add_get(CASE + "/takeover", CHAT.state(), name="staff_api_takeover_state")
    router.add_post(CASE + "/takeover", CHAT.action("take_over", "taken"), name="staff_api_takeover")
    router.add_post(CASE + "/messages", CHAT.action("send", lambda sent: "sent" if sent.delivered else "kept",
                                                    with_text=True), name="staff_api_takeover_message")
    router.add_post(CASE + "/handback", CHAT.action("hand_back", "back"), name="staff_api_takeover_handback")
    router.add_get(CASE + "/sms", SMS.state(), name="staff_api_sms_state")
    router.add_post(CASE + "/sms/messages", SMS.action("send", "sent", with_text=True), name="staff_api_sms_message")
    router.add_post(CASE + "/sms/template", SMS.action("send_template", "template"), name="staff_api_sms_template")
    router.add_post(CASE + "/sms/handback", SMS.action("hand_back", "back"), name="staff_api_sms_handback")
