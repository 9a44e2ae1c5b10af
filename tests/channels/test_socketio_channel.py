"""The socket.io channel with python-socketio's own client on the long-polling transport.

Every test talks to a real Sanic server (``tests/channels/conftest.py``) the way a
standard Rasa web chat does: ``session_request`` -> ``session_confirm`` ->
``user_uttered`` -> ``bot_uttered``.
"""

from __future__ import annotations

import asyncio

import pytest
import socketio

from bot.assistant.channels.caps import MAX_METADATA_BYTES, MAX_REQUEST_BYTES
from bot.assistant.channels.sessions import SessionTokens
from bot.core.escalation.flood import METADATA_KEY, client_key
from tests.channels.conftest import CLINIC_ORIGIN, FOREIGN_ORIGIN, channel_settings
from tests.support.socketio_client import Patient


@pytest.fixture
async def patients():
    """Connected clients, disconnected after the test."""
    made: list[Patient] = []

    async def connect(server, origin: str = CLINIC_ORIGIN) -> Patient:
        patient = Patient()
        made.append(patient)
        return await patient.connect(server.url, origin)

    yield connect
    for patient in made:
        await patient.leave()


def tokens() -> SessionTokens:
    return SessionTokens(channel_settings().session_secret)


async def test_conversation_over_polling_gets_a_signed_session_and_the_reply(channel_server, patients):
    patient = await patients(channel_server)
    session_id = await patient.start()
    assert tokens().verify(session_id)
    await patient.say("does it hurt?", session_id)
    # The reply travels through the session's room, so this also proves enter_room was awaited.
    assert await patient.next("bot_uttered") == {"text": "echo: does it hurt?"}
    [message] = channel_server.agent.received
    assert (message.sender_id, message.input_channel) == (session_id, "socketio")


async def test_a_returning_client_resumes_its_session_with_the_signed_id(channel_server, patients):
    first = await patients(channel_server)
    session_id = await first.start()
    await first.leave()
    again = await patients(channel_server)
    assert await again.start(session_id) == session_id
    await again.say("still there?", session_id)
    assert await again.next("bot_uttered") == {"text": "echo: still there?"}


async def test_a_second_socket_cannot_join_or_post_into_the_first_sockets_session(channel_server, patients):
    first = await patients(channel_server)
    first_session = await first.start()
    intruder = await patients(channel_server)
    nonce = first_session.split(".")[0]
    for guess in (first.client.get_sid(), nonce, f"{nonce}.{'A' * 22}", first_session.split(".")[0][:8]):
        issued = await intruder.start(guess)
        assert issued not in (guess, first_session)
    await intruder.say("yes", first_session)
    reply = await intruder.next("bot_uttered")
    assert "couldn't match that message" in reply["text"]
    await intruder.say("hello from the second", issued)
    assert await intruder.next("bot_uttered") == {"text": "echo: hello from the second"}
    assert await first.quiet()
    assert [m.sender_id for m in channel_server.agent.received] == [issued]


async def test_a_message_before_any_session_request_gets_a_session_of_its_own(channel_server, patients):
    patient = await patients(channel_server)
    forged = "a" * 22 + "." + "b" * 22
    await patient.say("hello", forged)
    session_id = await patient.next("session_confirm")
    assert session_id != forged and tokens().verify(session_id)
    assert await patient.next("bot_uttered") == {"text": "echo: hello"}
    assert channel_server.agent.received[0].sender_id == session_id


async def test_without_session_persistence_every_socket_gets_a_new_session(serve, patients):
    server = await serve(socketio_credentials={"session_persistence": False})
    first = await patients(server)
    session_id = await first.start()
    second = await patients(server)
    assert await second.start(session_id) != session_id


async def test_connecting_from_a_foreign_origin_is_refused(channel_server):
    with pytest.raises(socketio.exceptions.ConnectionError):
        await Patient().connect(channel_server.url, origin=FOREIGN_ORIGIN)


async def test_a_session_over_its_rate_limit_gets_a_polite_reply_not_silence(serve, patients):
    server = await serve(sender_messages_per_minute=1)
    patient = await patients(server)
    session_id = await patient.start()
    await patient.say("one", session_id)
    assert await patient.next("bot_uttered") == {"text": "echo: one"}
    await patient.say("two", session_id)
    reply = await patient.next("bot_uttered")
    assert "wait a minute" in reply["text"] and server.socketio.clinic.phone in reply["text"]
    assert [m.text for m in server.agent.received] == ["one"]


async def test_oversized_metadata_is_dropped_and_the_message_still_answered(channel_server, patients):
    patient = await patients(channel_server)
    session_id = await patient.start()
    await patient.say("hi", session_id, metadata={"blob": "x" * MAX_METADATA_BYTES})
    assert await patient.next("bot_uttered") == {"text": "echo: hi"}
    # The client's metadata is dropped; the channel's own client key (bot/core/escalation/flood.py) stays.
    assert channel_server.agent.received[0].metadata == {METADATA_KEY: client_key("127.0.0.1", "test-session-secret")}


async def test_a_packet_over_the_frame_cap_is_never_processed(channel_server, patients):
    patient = await patients(channel_server)
    session_id = await patient.start()
    await patient.say("x" * MAX_REQUEST_BYTES, session_id)
    await asyncio.sleep(0.5)
    assert channel_server.agent.received == []


async def test_a_malformed_event_is_ignored_and_the_socket_keeps_working(channel_server, patients):
    patient = await patients(channel_server)
    session_id = await patient.start()
    await patient.client.emit("user_uttered", "not an object")
    await patient.say("after", session_id)
    assert await patient.next("bot_uttered") == {"text": "echo: after"}
