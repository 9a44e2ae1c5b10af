"""Routes for staff texting a patient who came in by SMS or WhatsApp (logic: :mod:`bot.dashboard.staff.sms_replies`).

JSON API, behind the dashboard's authentication and CSRF check like every ``/staff`` route:

* ``GET  /staff/api/escalations/{id}/sms``           - the number, opt-out, WhatsApp window,
  who is texting, and the lines sent with their delivery;
* ``POST /staff/api/escalations/{id}/sms/messages``  - ``{"text": ...}`` to the patient (the
  first one pauses the assistant);
* ``POST /staff/api/escalations/{id}/sms/template``  - the approved WhatsApp template;
* ``POST /staff/api/escalations/{id}/sms/handback``  - give the conversation back to the assistant.

The conversation page's texting block (``templates/staff/partials/sms_reply.html``)
posts plain forms to the same routes; a form post is answered with a 303 back to the
page with a fixed word in ``?sms=`` or ``?sms_error=`` (never data).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.dashboard.staff.cases import CaseDetail
from bot.dashboard.staff.sms_replies import SmsBridge, SmsReplyService
from bot.dashboard.staff.takeover import TakeoverError
from bot.dashboard.web import pages
from bot.dashboard.web.keys import CLINIC, DB, SETTINGS
from bot.dashboard.web.staff_talk import StaffTalk, bridge_client

PREFIX = "/staff/api/escalations/{id:[0-9a-fA-F-]{36}}/sms"
SMS_BRIDGE = web.AppKey("sms_staff_bridge", SmsBridge)
DONE = {
    "sent": "Text queued for the patient. Its delivery shows below.",
    "template": "Approved template queued for the patient.",
    "back": "The assistant answers this patient again. They were told by text.",
}
ERRORS = {
    "opted_out": "Not sent: this patient texted STOP, so nothing can be sent to their number.",
    "whatsapp_window_closed": "Not sent: WhatsApp allows free text only within 24 hours of the patient's last message.",
    "no_template": "No approved WhatsApp template is configured.",
    "not_sms": "This conversation did not come in by SMS or WhatsApp.",
    "not_found": "The assistant's server has no such conversation any more.",
    "held_by_colleague": "A colleague is texting this patient. Reload to see who.",
    "not_holding": "Nobody is texting this patient: the assistant is answering.",
    "bad_request": "Write a message first (up to 2,000 characters).",
    "chat_server_unavailable": "The assistant's server did not answer. Nothing was sent; try again.",
}


#: The bridge client to the Rasa server, for the app's lifetime.
sms_bridge = bridge_client(SMS_BRIDGE, SmsBridge)


def _service(request: web.Request) -> SmsReplyService:
    settings = request.app[SETTINGS]
    return SmsReplyService(request.app[DB], request.app[SMS_BRIDGE], request.app[CLINIC],
                           settings.twilio_whatsapp_template_sid)


TALK = StaffTalk(_service, anchor="sms", done_key="sms", error_key="sms_error")
#: GET: texting this escalation's patient.
get_state = TALK.state()
#: POST: a text to the patient.
send_message = TALK.action("send", "sent", with_text=True)
#: POST: the approved WhatsApp template.
send_template = TALK.action("send_template", "template")
#: POST: give the conversation back to the assistant.
hand_back = TALK.action("hand_back", "back")


async def case_context(request: web.Request, detail: CaseDetail) -> dict[str, Any]:
    """The conversation page's texting block, for SMS and WhatsApp escalations only."""
    service = _service(request)
    case_id = request.match_info["id"]
    if not await service.is_sms(case_id):
        return {}
    try:
        state = await service.state(case_id, request["staff"])
    except TakeoverError:
        return {}
    done, error = TALK.outcome(request, DONE, ERRORS)
    return {"sms_reply": state.to_dict(), "sms_done": done, "sms_error": error}


def setup(app: web.Application) -> None:
    """Register the texting routes and the conversation page's texting block."""
    app.cleanup_ctx.append(sms_bridge)
    pages.add_case_context(app, case_context)
    router = app.router
    router.add_get(PREFIX, get_state, name="staff_api_sms_state")
    router.add_post(PREFIX + "/messages", send_message, name="staff_api_sms_message")
    router.add_post(PREFIX + "/template", send_template, name="staff_api_sms_template")
    router.add_post(PREFIX + "/handback", hand_back, name="staff_api_sms_handback")
