"""Staff in a patient's web chat, the web app's side: store first, audit, then the bridge.

The Rasa server is replaced by :class:`FakeBridge`, an aiohttp server answering the
bridge's four operations the way the real one does (it marks lines logged and, while
the patient's chat is "open", delivered), and recording what it was asked. The store
is a real SQLite file migrated to head.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Optional

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.core.clinic import load_clinic
from bot.core.settings import REPO_ROOT
from bot.core.store import chat
from bot.core.store.models import AuditEvent, AuditKind, ChatTakeover, Escalation, Priority, Reason, StaffChatLine, StaffUser, Status, utcnow
from bot.dashboard.staff.handoff import errors as tk
from bot.dashboard.staff.handoff.lines import MAX_MESSAGE_CHARS
from bot.dashboard.staff.handoff.web_chat import ChatBridge as Bridge, web_chat_handoff as TakeoverService

SECRET = "bridge-secret"
SENDER = "a" * 22 + "." + "b" * 22
CLINIC = load_clinic(REPO_ROOT / "clinic.yml")


@dataclass(frozen=True)
class Who:
    id: Optional[int]
    username: str
    display_name: str


JANE = Who(1, "jane", "Jane Doe")
OMAR = Who(2, "omar", "Omar")


@pytest.fixture(autouse=True)
async def accounts(sessions):
    """Jane's and Omar's staff accounts (ids 1 and 2); the hash is never checked here."""
    async with sessions() as session:
        async with session.begin():
            for who in (JANE, OMAR):
                session.add(StaffUser(id=who.id, username=who.username, display_name=who.display_name,
                                      password_hash="not-used"))


class FakeBridge:
    """The Rasa server's staff bridge, scripted."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.calls: list[tuple[str, dict]] = []
        self.open = True
        self.paused = False
        self.known = True
        self.refuse: dict[str, tuple[int, dict]] = {}
        self.stored_when_called: list[bool] = []

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Bridge-Secret") != SECRET:
            return web.json_response({"error": "unauthorised"}, status=401)
        operation = request.match_info["op"]
        body = await request.json()
        self.calls.append((operation, body))
        if operation in self.refuse:
            status, answer = self.refuse[operation]
            return web.json_response(answer, status=status)
        if operation == "presence":
            return web.json_response({"known": self.known, "paused": self.paused, "connected": self.open})
        async with self.sessions() as session:
            async with session.begin():
                line = await chat.get_line(session, body["line_id"])
                self.stored_when_called.append(line is not None and line.body != "")
                await chat.mark_logged(session, body["line_id"], utcnow())
                if self.open:
                    await chat.claim_delivery(session, body["line_id"], utcnow())
        self.paused = {"takeover": True, "handback": False}.get(operation, self.paused)
        return web.json_response({"paused": self.paused, "delivered": self.open, "connected": self.open})


@pytest.fixture
async def bridge(aiohttp_server, sessions):
    fake = FakeBridge(sessions)
    app = web.Application()
    app.router.add_post("/webhooks/staff_bridge/{op}", fake.handle)
    fake.server = await aiohttp_server(app)
    return fake


@pytest.fixture
async def service(bridge, sessions):
    async with aiohttp.ClientSession() as http:
        client = Bridge(http, str(bridge.server.make_url("")), SECRET, timeout=5)
        yield TakeoverService(sessions, client, CLINIC)


async def escalation(sessions, channel: str = "socketio", sender: str = SENDER) -> str:
    async with sessions() as session:
        async with session.begin():
            row = Escalation(
                id=str(uuid.uuid4()), channel=channel, sender_id=sender, reason=Reason.human_request,
                priority=Priority.normal, trigger={}, transcript=[], contact_name="Pat",
                contact_method="chat", contact_detail="this conversation (socketio)", consent_given=True,
            )
            session.add(row)
            return row.id


async def rows(sessions, model) -> list:
    async with sessions() as session:
        return list((await session.execute(select(model).order_by(model.id))).scalars())


async def test_take_over_stores_and_audits_the_takeover_before_asking_the_chat_server(service, bridge, sessions):
    case = await escalation(sessions)

    sent = await service.take_over(case, JANE)

    assert sent.delivered and sent.connected
    assert sent.line["kind"] == "joined" and sent.line["status"] == "delivered"
    assert sent.line["text"].startswith(f"Jane Doe from {CLINIC.name} has joined the chat.")
    [takeover] = await rows(sessions, ChatTakeover)
    assert (takeover.staff_username, takeover.staff_name, takeover.ended_at) == ("jane", "Jane Doe", None)
    assert bridge.calls == [("takeover", {"sender_id": SENDER, "line_id": sent.line["id"]})]
    assert bridge.stored_when_called == [True]
    [audit] = [a for a in await rows(sessions, AuditEvent) if a.kind == AuditKind.chat_taken_over]
    assert audit.actor == "jane" and audit.escalation_id == case
    assert audit.detail == {"takeover_id": takeover.id, "line_id": sent.line["id"]}


async def test_only_web_chat_conversations_can_be_taken_over(service, bridge, sessions):
    case = await escalation(sessions, channel="rest", sender="rest-user-1")

    with pytest.raises(tk.NotWebChat):
        await service.take_over(case, JANE)

    assert bridge.calls == [] and await rows(sessions, ChatTakeover) == []


async def test_an_unknown_escalation_is_not_found(service):
    with pytest.raises(tk.EscalationNotFound):
        await service.take_over(str(uuid.uuid4()), JANE)


async def test_one_staff_member_holds_a_chat_at_a_time(service, bridge, sessions):
    case = await escalation(sessions)
    await service.take_over(case, JANE)

    with pytest.raises(tk.HeldByColleague, match="Jane Doe has this chat"):
        await service.take_over(case, OMAR)
    with pytest.raises(tk.NotHolding, match="Jane Doe has this chat"):
        await service.send(case, OMAR, "hello")

    assert [c[0] for c in bridge.calls] == ["takeover"]


async def test_a_chat_server_that_does_not_answer_leaves_nothing_half_done(service, bridge, sessions):
    case = await escalation(sessions)
    bridge.refuse["takeover"] = (500, {"error": "boom"})

    with pytest.raises(tk.ChatServerUnavailable):
        await service.take_over(case, JANE)

    [takeover] = await rows(sessions, ChatTakeover)
    assert takeover.ended_at is not None and takeover.ended_by == "system"
    [line] = await rows(sessions, StaffChatLine)
    assert line.failed_at is not None
    del bridge.refuse["takeover"]
    assert (await service.take_over(case, JANE)).delivered


async def test_an_unreachable_chat_server_is_reported_not_raised_as_a_crash(sessions):
    case = await escalation(sessions)
    async with aiohttp.ClientSession() as http:
        unreachable = TakeoverService(sessions, Bridge(http, "http://127.0.0.1:9", SECRET, timeout=2), CLINIC)
        with pytest.raises(tk.ChatServerUnavailable, match="not taken over"):
            await unreachable.take_over(case, JANE)
        state = await unreachable.state(case, JANE)
    assert state.connected is None and state.holder is None


async def test_a_message_is_stored_and_audited_without_its_text_then_sent(service, bridge, sessions):
    case = await escalation(sessions)
    await service.take_over(case, JANE)

    sent = await service.send(case, JANE, "  Hello Pat,\x07 I'm Jane, one of the physiotherapists.  ")

    assert sent.delivered
    assert sent.line["text"] == "Hello Pat,  I'm Jane, one of the physiotherapists."
    assert bridge.calls[-1] == ("message", {"sender_id": SENDER, "line_id": sent.line["id"]})
    assert bridge.stored_when_called[-1]
    [audit] = [a for a in await rows(sessions, AuditEvent) if a.kind == AuditKind.chat_message_sent]
    assert audit.actor == "jane"
    assert "Hello" not in str(audit.detail) and audit.detail["line_id"] == sent.line["id"]


async def test_a_message_the_patient_cannot_receive_now_says_so_and_waits(service, bridge, sessions):
    case = await escalation(sessions)
    await service.take_over(case, JANE)
    bridge.open = False

    sent = await service.send(case, JANE, "Are you still there?")

    assert (sent.delivered, sent.connected) == (False, False)
    assert sent.line["status"] == "waiting"
    state = await service.state(case, JANE)
    assert state.connected is False
    assert state.contact == {"name": "Pat", "method": "chat", "detail": "this conversation (socketio)", "consent": True}


@pytest.mark.parametrize("text", ["", "   ", None, 42, "x" * (MAX_MESSAGE_CHARS + 1)])
async def test_empty_or_overlong_messages_are_refused_before_anything_is_stored(service, bridge, sessions, text):
    case = await escalation(sessions)
    await service.take_over(case, JANE)

    with pytest.raises(tk.InvalidMessage):
        await service.send(case, JANE, text)

    assert [line.kind.value for line in await rows(sessions, StaffChatLine)] == ["joined"]


async def test_writing_needs_a_takeover_first(service, bridge, sessions):
    case = await escalation(sessions)

    with pytest.raises(tk.NotHolding, match="Take the chat over first"):
        await service.send(case, JANE, "hello")

    assert bridge.calls == []


async def test_when_the_assistant_has_the_chat_again_the_message_is_not_sent_and_the_takeover_ends(
    service, bridge, sessions
):
    case = await escalation(sessions)
    await service.take_over(case, JANE)
    bridge.refuse["message"] = (409, {"error": "not_paused"})

    with pytest.raises(tk.NotHolding, match="assistant has this chat again"):
        await service.send(case, JANE, "hello?")

    [takeover] = await rows(sessions, ChatTakeover)
    assert takeover.ended_by == "assistant"
    assert (await rows(sessions, StaffChatLine))[-1].failed_at is not None


async def test_any_colleague_can_hand_back_and_the_patient_is_told_the_assistant_is_back(service, bridge, sessions):
    case = await escalation(sessions)
    await service.take_over(case, JANE)

    sent = await service.hand_back(case, OMAR)

    assert sent.line["kind"] == "left" and "the automated assistant is back" in sent.line["text"]
    assert sent.line["text"].startswith("Jane Doe has left the chat")
    assert bridge.calls[-1] == ("handback", {"sender_id": SENDER, "line_id": sent.line["id"]})
    [takeover] = await rows(sessions, ChatTakeover)
    assert takeover.ended_by == "omar"
    [audit] = [a for a in await rows(sessions, AuditEvent) if a.kind == AuditKind.chat_handed_back]
    assert audit.actor == "omar"
    with pytest.raises(tk.NotHolding):
        await service.hand_back(case, JANE)
    assert (await service.take_over(case, OMAR)).delivered


async def test_a_failed_hand_back_keeps_the_takeover_so_it_can_be_tried_again(service, bridge, sessions):
    case = await escalation(sessions)
    await service.take_over(case, JANE)
    bridge.refuse["handback"] = (503, {"error": "assistant_not_ready"})

    with pytest.raises(tk.ChatServerUnavailable):
        await service.hand_back(case, JANE)

    [takeover] = await rows(sessions, ChatTakeover)
    assert takeover.ended_at is None
    del bridge.refuse["handback"]
    assert (await service.hand_back(case, JANE)).line["kind"] == "left"


async def test_state_shows_holder_lines_and_presence(service, bridge, sessions):
    case = await escalation(sessions)
    await service.take_over(case, JANE)
    await service.send(case, JANE, "Hi")

    state = (await service.state(case, JANE)).to_dict()
    theirs = (await service.state(case, OMAR)).to_dict()

    assert state["holder"]["name"] == "Jane Doe" and state["mine"] and not theirs["mine"]
    assert (state["patient_connected"], state["paused"], state["web_chat"]) == (True, True, True)
    assert [(line["kind"], line["status"]) for line in state["lines"]] == [("joined", "delivered"), ("message", "delivered")]


async def test_state_closes_a_takeover_the_chat_server_no_longer_pauses(service, bridge, sessions):
    case = await escalation(sessions)
    await service.take_over(case, JANE)
    bridge.paused = False  # a new session after a long silence: the assistant answers again

    state = await service.state(case, JANE)

    assert state.holder is None
    [takeover] = await rows(sessions, ChatTakeover)
    assert takeover.ended_by == "assistant"


async def test_the_bridge_secret_is_sent_and_a_wrong_one_is_an_unavailable_chat_server(bridge, sessions):
    case = await escalation(sessions)
    async with aiohttp.ClientSession() as http:
        wrong = TakeoverService(sessions, Bridge(http, str(bridge.server.make_url("")), "nope"), CLINIC)
        with pytest.raises(tk.ChatServerUnavailable):
            await wrong.take_over(case, JANE)
    assert bridge.calls == []


async def test_taking_over_takes_a_new_unassigned_case(service, bridge, sessions):
    case = await escalation(sessions)

    await service.take_over(case, JANE)

    [record] = await rows(sessions, Escalation)
    assert (record.assignee_id, record.assignee, record.status) == (JANE.id, "jane", Status.in_progress)
    audits = {a.kind: a.detail for a in await rows(sessions, AuditEvent) if a.actor == "jane"}
    assert audits[AuditKind.case_assigned]["after"] == {"assignee_id": JANE.id, "assignee": "jane"}
    assert audits[AuditKind.status_changed] == {"before": "new", "after": "in_progress", "by": "talking"}


async def test_taking_over_leaves_a_colleagues_case_with_them(service, bridge, sessions):
    case = await escalation(sessions)
    async with sessions() as session:
        async with session.begin():
            record = await session.get(Escalation, case)
            record.assignee_id, record.assignee, record.status = OMAR.id, "omar", Status.in_progress

    await service.take_over(case, JANE)

    [record] = await rows(sessions, Escalation)
    assert (record.assignee, record.status) == ("omar", Status.in_progress)
    assert not [a for a in await rows(sessions, AuditEvent) if a.kind == AuditKind.case_assigned]


async def test_a_takeover_the_chat_server_refuses_takes_nothing(service, bridge, sessions):
    case = await escalation(sessions)
    bridge.refuse["takeover"] = (404, {"error": "unknown_conversation"})

    with pytest.raises(tk.EscalationNotFound):
        await service.take_over(case, JANE)

    [record] = await rows(sessions, Escalation)
    assert (record.assignee, record.status) == (None, Status.new)
