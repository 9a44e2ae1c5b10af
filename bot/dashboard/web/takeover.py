"""Routes for staff in a patient's web chat (the logic is :mod:`bot.dashboard.staff.takeover`).

JSON API, behind the dashboard's authentication and CSRF check like every ``/staff`` route:

* ``GET  /staff/api/escalations/{id}/takeover``  - who holds the chat, whether the
  patient's chat is open, the lines staff put into it and their delivery;
* ``POST /staff/api/escalations/{id}/takeover``  - take the chat over (pause the assistant);
* ``POST /staff/api/escalations/{id}/messages``  - ``{"text": ...}`` into a chat you hold;
* ``POST /staff/api/escalations/{id}/handback``  - give the chat back to the assistant.

The conversation page's takeover block (``templates/staff/partials/takeover.html``)
posts plain forms to the same three POST routes, so it works without script; a form
post is answered with a 303 back to the page (a fixed word in ``?chat=``, never data),
while ``static/staff/takeover.js`` sends JSON and updates the block in place.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bot.dashboard.staff.cases import CaseDetail
from bot.dashboard.staff.takeover import Bridge, TakeoverService
from bot.dashboard.web import pages
from bot.dashboard.web.keys import CLINIC, DB
from bot.dashboard.web.staff_talk import StaffTalk, bridge_client

PREFIX = "/staff/api/escalations/{id:[0-9a-fA-F-]{36}}"
BRIDGE = web.AppKey("staff_bridge", Bridge)
#: How long the conversation page waits to learn whether the patient's chat is open.
PAGE_PRESENCE_SECONDS = 2.0
#: What the page says after a form post (``?chat=<key>``).
DONE = {
    "taken": "You have the chat. The patient was told you joined.",
    "sent": "Message sent.",
    "kept": "Not delivered: the patient's chat is closed. It will appear if they come back within the hour.",
    "back": "The assistant has the chat again. The patient was told.",
}


#: The bridge client to the Rasa server, for the app's lifetime.
takeover_service = bridge_client(BRIDGE, Bridge)


def _service(request: web.Request) -> TakeoverService:
    return TakeoverService(request.app[DB], request.app[BRIDGE], request.app[CLINIC])


TALK = StaffTalk(_service, anchor="takeover", done_key="chat", error_key="chat_error")
#: GET: the takeover's state.
get_state = TALK.state()
#: POST: take the chat over.
take_over = TALK.action("take_over", "taken")
#: POST: a message into the chat (``kept`` when the patient's chat is closed).
send_message = TALK.action("send", lambda sent: "sent" if sent.delivered else "kept", with_text=True)
#: POST: give the chat back to the assistant.
hand_back = TALK.action("hand_back", "back")


ERRORS = {
    "not_found": "The chat server has no such conversation any more.",
    "not_web_chat": "Only conversations in the website chat can be taken over.",
    "held_by_colleague": "A colleague has this chat. Reload to see who.",
    "not_holding": "You don't hold this chat (the assistant or a colleague has it).",
    "bad_request": "Write a message first (up to 2,000 characters).",
    "chat_server_unavailable": "The chat server did not answer. Nothing was sent; try again.",
}


async def case_context(request: web.Request, detail: CaseDetail) -> dict[str, Any]:
    """The conversation page's takeover block: state, and the result of a form post."""
    service = _service(request)
    case_id = request.match_info["id"]
    state = await service.state(case_id, request["staff"], ask_chat_server=False)
    if state.web_chat:
        state = await _with_presence(service, case_id, request)
    done, error = TALK.outcome(request, DONE, ERRORS)
    return {"takeover": state.to_dict(), "takeover_done": done, "takeover_error": error}


async def _with_presence(service: TakeoverService, case_id: str, request: web.Request) -> Any:
    try:
        return await asyncio.wait_for(service.state(case_id, request["staff"]), PAGE_PRESENCE_SECONDS)
    except asyncio.TimeoutError:
        return await service.state(case_id, request["staff"], ask_chat_server=False)


def setup(app: web.Application) -> None:
    """Register the takeover routes and the conversation page's takeover block."""
    app.cleanup_ctx.append(takeover_service)
    pages.add_case_context(app, case_context)
    router = app.router
    router.add_get(PREFIX + "/takeover", get_state, name="staff_api_takeover_state")
    router.add_post(PREFIX + "/takeover", take_over, name="staff_api_takeover")
    router.add_post(PREFIX + "/messages", send_message, name="staff_api_takeover_message")
    router.add_post(PREFIX + "/handback", hand_back, name="staff_api_takeover_handback")
