"""The staff bridge on a real Sanic server beside the widget's socket.io channel.

The agent is a stand-in with Rasa's real in-memory tracker and lock stores: it logs each
patient message and, unless the conversation is paused, answers ``echo: <text>`` (what
Rasa's processor does with a paused tracker: log, predict nothing). Staff lines live in
a real SQLite store migrated to head, as the web app writes them.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage, register
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.server import configure_cors
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, ConversationPaused, ConversationResumed, UserUttered
from sanic import Sanic

from bot.assistant.channels.socketio import PatientSocketIOInput
from bot.assistant.channels.staff_bridge import SECRET_HEADER, StaffBridgeInput
from bot.assistant.servers.staff_port import StaffListener
from bot.core.store import chat
from bot.core.store.models import ChatLineKind, Escalation, Priority, Reason, StaffChatLine, utcnow
from bot.launch import free_port
from tests.channels.conftest import CLINIC_ORIGIN, SOCKETIO_CREDENTIALS, channel_settings
from tests.support.sanic_server import start_sanic, stop_sanic
from tests.support.socketio_client import Patient

SECRET = "test-bridge-secret"


class TrackerAgent:
    """Rasa's agent as the channels see it: tracker store, lock store, handle_message."""

    def __init__(self) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.lock_store = InMemoryLockStore()

    async def handle_message(self, message: UserMessage) -> None:
        async with self.lock_store.lock(message.sender_id):
            tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
            red_flag = "cant breathe" in message.text  # what the safety screen puts in the parse data
            safety = {"reason": "emergency" if red_flag else None}
            tracker.update(UserUttered(message.text, parse_data={"safety": safety}))
            if not tracker.is_paused():
                tracker.update(BotUttered(f"echo: {message.text}"))
                await message.output_channel.send_response(message.sender_id, {"text": f"echo: {message.text}"})
            await self.tracker_store.save(tracker)

    async def events(self, sender_id: str) -> list:
        return list((await self.tracker_store.retrieve(sender_id)).events)


@dataclass
class BridgeServer:
    url: str  # the patient-facing port
    staff_url: str  # the loopback staff port (bot.assistant.servers.staff_port)
    agent: TrackerAgent
    sessions: Any
    sio: Any
    staff: Any = None

    async def call(self, operation: str, body: Any, secret: str | None = SECRET, raw: bytes | None = None):
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{self.staff_url}/webhooks/staff_bridge/{operation}", json=None if raw is not None else body,
                data=raw, headers=headers,
            ) as reply:
                return reply.status, await reply.json()

    async def line(self, sender_id: str, kind: ChatLineKind, body: str) -> int:
        """Store a staff line the way the web app does before it calls the bridge."""
        async with self.sessions() as session:
            async with session.begin():
                escalation = Escalation(
                    id=str(uuid.uuid4()), channel="socketio", sender_id=sender_id, reason=Reason.human_request,
                    priority=Priority.normal, trigger={}, transcript=[], status="in_progress",
                ) if kind == ChatLineKind.joined else None
                if escalation is not None:
                    session.add(escalation)
                    await session.flush()
                    self.escalation_id = escalation.id
                row = await chat.add_line(
                    session, escalation_id=self.escalation_id, takeover_id=None, sender_id=sender_id, kind=kind,
                    username="jane", name="Jane Doe", body=body, now=utcnow(),
                )
                return row.id

    async def stored(self, line_id: int) -> StaffChatLine:
        async with self.sessions() as session:
            return await chat.get_line(session, line_id)


@pytest.fixture
async def bridge(db_url, sessions):
    """Both channels on a loopback port, with the tracker agent and the store."""
    settings = channel_settings(database_url=db_url, staff_bridge_secret=SECRET)
    app = Sanic(f"bridge_{uuid.uuid4().hex}", configure_logging=False)
    configure_cors(app, None)
    socketio_channel = PatientSocketIOInput.from_settings(settings, SOCKETIO_CREDENTIALS)
    register([socketio_channel, StaffBridgeInput(SECRET)], app, "/webhooks/")
    agent = TrackerAgent()
    app.ctx.agent = agent
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    staff = StaffListener(free_port())
    staff.install(app)
    # As Rasa starts it: Sanic-Cors and every channel's listeners run; the staff listener
    # starts in the after-start listeners.
    server = await start_sanic(app, listener, serving=True)
    yield BridgeServer(url=f"http://127.0.0.1:{port}", staff_url=f"http://127.0.0.1:{staff.port}", agent=agent,
                       sessions=sessions, sio=socketio_channel.sio, staff=staff)
    await stop_sanic(server, socketio_channel.sio)
    engine_sessions = socketio_channel.chat_lines._sessions
    if engine_sessions is not None:
        await engine_sessions.kw["bind"].dispose()
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


@pytest.fixture
async def patients():
    made: list[Patient] = []

    async def connect(server: BridgeServer) -> Patient:
        patient = Patient()
        made.append(patient)
        return await patient.connect(server.url, CLINIC_ORIGIN)

    yield connect
    for patient in made:
        await patient.leave()


async def chatting(bridge: BridgeServer, patients) -> tuple[Patient, str]:
    """A patient with a conversation the assistant has answered once."""
    patient = await patients(bridge)
    session_id = await patient.start()
    await patient.say("hello", session_id)
    assert await patient.next("bot_uttered") == {"text": "echo: hello"}
    return patient, session_id


async def close(bridge: BridgeServer, patient: Patient, session_id: str) -> None:
    """The patient's tab is gone: the server drops the socket (as at its ping timeout) and it leaves the room."""
    for sid, _ in list(bridge.sio.manager.get_participants("/", session_id)):
        await bridge.sio.disconnect(sid, namespace="/")
    await patient.leave()


async def take_over(bridge: BridgeServer, session_id: str) -> tuple[int, dict]:
    line_id = await bridge.line(session_id, ChatLineKind.joined, "Jane Doe from Example Physio has joined the chat.")
    status, answer = await bridge.call("takeover", {"sender_id": session_id, "line_id": line_id})
    assert status == 200, answer
    return line_id, answer


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
async def test_every_operation_needs_the_bridge_secret(bridge, patients, secret):
    _, session_id = await chatting(bridge, patients)
    line_id = await bridge.line(session_id, ChatLineKind.joined, "joined")
    for operation in ("takeover", "message", "handback", "presence"):
        status, answer = await bridge.call(operation, {"sender_id": session_id, "line_id": line_id}, secret=secret)
        assert (status, answer) == (401, {"error": "unauthorised"})
    assert not any(isinstance(e, ConversationPaused) for e in await bridge.agent.events(session_id))
    assert (await bridge.stored(line_id)).logged_at is None


async def test_a_bridge_with_no_secret_configured_refuses_everything(bridge):
    channel = StaffBridgeInput("")
    request = type("R", (), {"headers": {SECRET_HEADER: ""}})()
    assert not channel.authorised(request)


async def test_oversized_bodies_and_non_web_chat_conversations_are_refused(bridge):
    status, answer = await bridge.call("presence", None, raw=b'{"sender_id": "' + b"a" * 5000 + b'"}')
    assert (status, answer) == (413, {"error": "body_too_large"})
    status, answer = await bridge.call("presence", {"sender_id": "+4915112345678"})
    assert (status, answer) == (400, {"error": "not_a_web_chat"})
    status, answer = await bridge.call("presence", None, raw=b"[not json")
    assert (status, answer) == (400, {"error": "invalid_json"})


async def test_take_over_pauses_the_conversation_and_the_patient_sees_who_joined(bridge, patients):
    patient, session_id = await chatting(bridge, patients)

    line_id, answer = await take_over(bridge, session_id)

    assert answer == {"paused": True, "delivered": True, "connected": True}
    shown = await patient.next("bot_uttered")
    assert shown == {
        "text": "Jane Doe from Example Physio has joined the chat.",
        "metadata": {"staff": {"name": "Jane Doe", "event": "joined"}},
    }
    events = await bridge.agent.events(session_id)
    assert isinstance(events[-2], ConversationPaused)
    assert isinstance(events[-1], BotUttered) and events[-1].text == shown["text"]
    assert events[-1].metadata["staff"] == {"name": "Jane Doe", "username": "jane", "event": "joined", "line_id": line_id}
    stored = await bridge.stored(line_id)
    assert stored.logged_at is not None and stored.delivered_at is not None


async def test_while_paused_patient_messages_are_kept_and_get_no_automated_reply_or_fallback(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    await take_over(bridge, session_id)
    await patient.next("bot_uttered")

    await patient.say("is anyone there?", session_id)

    assert await patient.quiet(0.7)
    events = await bridge.agent.events(session_id)
    assert isinstance(events[-1], UserUttered) and events[-1].text == "is anyone there?"


async def test_a_red_flag_while_paused_still_gets_the_urgent_guidance_at_once(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    await take_over(bridge, session_id)
    await patient.next("bot_uttered")

    await patient.say("i cant breathe and my chest hurts", session_id)

    guidance = await patient.next("bot_uttered")
    assert "call 999 now" in guidance["text"] and "020 7946 0958" in guidance["text"]
    assert "metadata" not in guidance  # the assistant's words, not a staff member's
    assert (await bridge.agent.tracker_store.retrieve(session_id)).is_paused()


async def test_another_language_while_paused_reaches_staff_instead_of_the_automated_excuse(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    await take_over(bridge, session_id)
    await patient.next("bot_uttered")

    await patient.say("Hola, ¿cuándo podría venir mañana por la tarde?", session_id)

    assert await patient.quiet(0.7)
    assert (await bridge.agent.events(session_id))[-1].text.startswith("Hola")


async def test_a_staff_message_is_stored_in_the_conversation_and_shown_with_the_staff_name(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    await take_over(bridge, session_id)
    await patient.next("bot_uttered")
    line_id = await bridge.line(session_id, ChatLineKind.message, "Hi, I'm Jane, a physiotherapist. How can I help?")

    status, answer = await bridge.call("message", {"sender_id": session_id, "line_id": line_id})

    assert (status, answer) == (200, {"paused": True, "delivered": True, "connected": True})
    assert await patient.next("bot_uttered") == {
        "text": "Hi, I'm Jane, a physiotherapist. How can I help?",
        "metadata": {"staff": {"name": "Jane Doe", "event": "message"}},
    }
    last = (await bridge.agent.events(session_id))[-1]
    assert isinstance(last, BotUttered) and last.metadata["staff"]["line_id"] == line_id


async def test_a_message_into_a_conversation_the_assistant_holds_is_refused(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    line_id = await bridge.line(session_id, ChatLineKind.joined, "joined")  # creates the escalation
    line_id = await bridge.line(session_id, ChatLineKind.message, "hello from staff")

    status, answer = await bridge.call("message", {"sender_id": session_id, "line_id": line_id})

    assert (status, answer) == (409, {"error": "not_paused"})
    assert await patient.quiet(0.3)
    assert (await bridge.stored(line_id)).logged_at is None


async def test_a_line_the_web_app_gave_up_on_never_enters_the_conversation(bridge, patients):
    """Staff were told it was not sent: a late call for it is refused, as on the SMS channel."""
    patient, session_id = await chatting(bridge, patients)
    await take_over(bridge, session_id)
    await patient.next("bot_uttered")
    line_id = await bridge.line(session_id, ChatLineKind.message, "this one failed")
    async with bridge.sessions() as session:
        async with session.begin():
            await chat.mark_failed(session, line_id, utcnow())
    before = len(await bridge.agent.events(session_id))

    status, answer = await bridge.call("message", {"sender_id": session_id, "line_id": line_id})

    assert (status, answer) == (409, {"error": "line_failed"})
    assert await patient.quiet(0.3)
    assert len(await bridge.agent.events(session_id)) == before


async def test_a_line_must_belong_to_the_conversation_and_operation(bridge, patients):
    _, session_id = await chatting(bridge, patients)
    _, other_session = await chatting(bridge, patients)
    line_id = await bridge.line(session_id, ChatLineKind.joined, "joined")

    assert await bridge.call("takeover", {"sender_id": other_session, "line_id": line_id}) == (
        404, {"error": "unknown_line"})
    assert await bridge.call("message", {"sender_id": session_id, "line_id": line_id}) == (
        404, {"error": "unknown_line"})
    assert await bridge.call("takeover", {"sender_id": session_id, "line_id": "1"}) == (
        400, {"error": "line_id_required"})


async def test_an_unknown_conversation_is_not_created(bridge):
    stranger = PatientSocketIOInput.from_settings(channel_settings(), SOCKETIO_CREDENTIALS).tokens.issue()
    line_id = await bridge.line(stranger, ChatLineKind.joined, "joined")

    assert await bridge.call("takeover", {"sender_id": stranger, "line_id": line_id}) == (
        404, {"error": "unknown_conversation"})
    assert await bridge.agent.tracker_store.retrieve(stranger) is None


async def test_hand_back_resumes_the_assistant(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    await take_over(bridge, session_id)
    await patient.next("bot_uttered")
    line_id = await bridge.line(session_id, ChatLineKind.left, "Jane Doe has left the chat. The assistant is back.")

    status, answer = await bridge.call("handback", {"sender_id": session_id, "line_id": line_id})

    assert (status, answer) == (200, {"paused": False, "delivered": True, "connected": True})
    assert (await patient.next("bot_uttered"))["metadata"] == {"staff": {"name": "Jane Doe", "event": "left"}}
    events = await bridge.agent.events(session_id)
    assert isinstance(events[-2], BotUttered) and isinstance(events[-1], ConversationResumed)
    await patient.say("does it hurt?", session_id)
    assert await patient.next("bot_uttered") == {"text": "echo: does it hurt?"}


async def test_presence_tells_whether_the_patients_chat_is_open_and_paused(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    assert await bridge.call("presence", {"sender_id": session_id}) == (
        200, {"known": True, "paused": False, "connected": True})
    await take_over(bridge, session_id)
    await close(bridge, patient, session_id)
    assert await bridge.call("presence", {"sender_id": session_id}) == (
        200, {"known": True, "paused": True, "connected": False})


async def test_a_line_for_a_closed_chat_is_not_delivered_and_arrives_when_the_patient_returns(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    await take_over(bridge, session_id)
    await patient.next("bot_uttered")
    await close(bridge, patient, session_id)
    line_id = await bridge.line(session_id, ChatLineKind.message, "Are you still there?")

    status, answer = await bridge.call("message", {"sender_id": session_id, "line_id": line_id})

    assert (status, answer) == (200, {"paused": True, "delivered": False, "connected": False})
    stored = await bridge.stored(line_id)
    assert stored.logged_at is not None and stored.delivered_at is None

    back = await patients(bridge)
    assert await back.start(session_id) == session_id
    assert await back.next("bot_uttered") == {
        "text": "Are you still there?", "metadata": {"staff": {"name": "Jane Doe", "event": "message"}},
    }
    assert (await bridge.stored(line_id)).delivered_at is not None
    again = await patients(bridge)
    assert await again.start(session_id) == session_id
    assert await again.quiet(0.5), "a delivered line is not sent twice"


async def test_a_new_session_gets_no_other_conversations_waiting_lines(bridge, patients):
    patient, session_id = await chatting(bridge, patients)
    await take_over(bridge, session_id)
    await close(bridge, patient, session_id)
    line_id = await bridge.line(session_id, ChatLineKind.message, "for the first patient only")
    await bridge.call("message", {"sender_id": session_id, "line_id": line_id})

    other = await patients(bridge)
    assert await other.start() != session_id
    assert await other.quiet(0.5)
    assert (await bridge.stored(line_id)).delivered_at is None


# The bridges' own loopback port (issue 20): never on the patient-facing one.


async def test_the_bridge_does_not_answer_on_the_patient_facing_port(bridge):
    async with aiohttp.ClientSession() as http:
        for path in ("/webhooks/staff_bridge/presence", "/webhooks/staff_bridge/takeover", "/webhooks/twilio/staff/message"):
            async with http.post(bridge.url + path, json={"sender_id": "x"}, headers={SECRET_HEADER: SECRET}) as reply:
                assert reply.status == 404, path


async def test_the_staff_port_answers_the_bridge_and_nothing_else(bridge):
    status, _ = await bridge.call("presence", {"sender_id": "not-a-session"})
    assert status == 400  # reached the bridge: it refuses a conversation that is not a web chat
    async with aiohttp.ClientSession() as http:
        for method, path in (("GET", "/"), ("GET", "/socket.io/?EIO=4&transport=polling"),
                             ("POST", "/webhooks/rest/webhook"), ("GET", "/webhooks/rest/")):
            async with http.request(method, bridge.staff_url + path, json={"sender": "a", "message": "hi"}) as reply:
                assert reply.status == 404, (method, path)


async def test_the_staff_port_listens_on_loopback_only(bridge):
    port = int(bridge.staff_url.rsplit(":", 1)[1])
    for family, address in ((socket.AF_INET, "127.0.0.1"),):
        with socket.socket(family) as probe:
            assert probe.connect_ex((address, port)) == 0
    other = [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
             if not info[4][0].startswith("127.")]
    for address in other:
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((address, port)) != 0, address


async def test_the_root_says_only_that_the_server_is_up(bridge):
    async with aiohttp.ClientSession() as http:
        async with http.get(bridge.url + "/") as reply:
            text = await reply.text()
    assert reply.status == 200 and "Rasa" not in text and "rasa" not in text.lower()
    assert await reply.json(content_type=None) == {"status": "ok"}


def test_the_staff_port_must_differ_from_the_patient_port():
    listener = StaffListener(5005)

    class App:
        class state:
            host, port = "127.0.0.1", 5005

        request_middleware = collections.deque()

    with pytest.raises(RuntimeError, match="STAFF_BRIDGE_PORT"):
        asyncio.run(listener.start(App(), None))

