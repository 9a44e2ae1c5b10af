"""End-to-end: the urgent path survives the action server dying, hanging or being slow (issue 20).

With the real processes: the action server is killed, stopped with SIGSTOP (hung), or
stopped for a few seconds and then let go (slow). In each case a patient reporting a red
flag on the REST webhook or the web chat (socket.io) gets the urgent guidance in the first
reply within 2 s of the Rasa server answering at all (REST: the whole answer; web chat:
the first message), from the Rasa server itself, with the clinic's phone number; the
escalation is spooled by the Rasa process, replayed by the web app into the store: 0 lost,
and no duplicate when a slow action server stores it too. A REST client that gives up
mid-turn loses nothing either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from typing import Iterator

import pytest
import requests
from sqlalchemy import create_engine, select

from bot.clinic import load_clinic
from bot.servers.action_client import PROBE_INTERVAL_SECONDS, PROBE_MISSES, PROBE_TIMEOUT_SECONDS
from bot.settings import sync_db_url
from bot.store.models import AuditKind, Priority, Reason
from tests.conftest import wait_for
from tests.e2e.test_rest_conversation import audit_kinds, escalations, texts
from tests.support.socketio_client import Patient
from tests.support.tracker import EVENTS

pytestmark = pytest.mark.e2e

RED_FLAG = "since my needling this morning i cant catch my breath"
#: The first reply arrives within this many seconds (issue 20's target).
FIRST_REPLY_SECONDS = 2.0
#: Replay into the store: the web app's worker polls every 0.5 s in the test stack.
REPLAY_SECONDS = 45


def sender(kind: str) -> str:
    return f"fault-{kind}-{uuid.uuid4().hex[:10]}"


#: How long the Rasa server takes to notice a hung action server by its health checks.
NOTICED_HUNG_SECONDS = PROBE_MISSES * (PROBE_INTERVAL_SECONDS + PROBE_TIMEOUT_SECONDS) + 1.0


@contextlib.contextmanager
def action_server(live_stack, state: str) -> Iterator[None]:
    """The action server killed, hung (SIGSTOP, for long enough to be noticed) or running, restored afterwards."""
    process = live_stack.stack.services["actions"].process
    if state == "killed":
        live_stack.stop_actions()
    elif state == "hung":
        os.killpg(process.pid, signal.SIGSTOP)
        time.sleep(NOTICED_HUNG_SECONDS)
    try:
        yield
    finally:
        if state == "killed":
            live_stack.start_actions()
        elif state == "hung":
            os.killpg(process.pid, signal.SIGCONT)
        if state == "hung":
            # The Rasa server uses it again once its health check answers.
            time.sleep(2 * PROBE_INTERVAL_SECONDS + 0.5)


def urgent_first(reply: str, clinic) -> None:
    assert clinic.emergency_number in reply
    assert "A&E" in reply
    assert reply.index(clinic.emergency_number) < reply.index(clinic.phone)


def stored_once(live_stack, who: str):
    [record] = wait_for(lambda: escalations(live_stack, who), timeout=REPLAY_SECONDS)
    assert (record.reason, record.priority) == (Reason.emergency, Priority.urgent)
    return record


def user_texts_in_tracker(live_stack, who: str) -> list[str]:
    import json

    url = sync_db_url(live_stack.settings.tracker_store_url)
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        rows = connection.execute(
            select(EVENTS.c.data).where(EVENTS.c.sender_id == who, EVENTS.c.type_name == "user")
        ).scalars().all()
    engine.dispose()
    return [json.loads(row).get("text") for row in rows]


@pytest.mark.parametrize("state", ["killed", "hung"])
def test_rest_red_flag_gets_urgent_guidance_and_is_spooled_then_stored(live_stack, state):
    clinic = load_clinic(live_stack.settings.clinic_config)
    who = sender(f"rest-{state}")
    live_stack.say(who, "hi")  # the conversation already open: the red flag is the turn measured
    with action_server(live_stack, state):
        started = time.monotonic()
        replies = texts(live_stack.say(who, RED_FLAG))
        elapsed = time.monotonic() - started

    assert elapsed < FIRST_REPLY_SECONDS, f"REST answer took {elapsed:.2f} s"
    urgent_first(replies, clinic)
    assert "alerted" not in replies and "couldn't pass this to the clinic team" in replies
    assert "what name" not in replies.lower(), "a contact form after an emergency"
    record = stored_once(live_stack, who)
    assert AuditKind.recovered_from_spool in audit_kinds(live_stack, record.id)


def test_a_new_conversation_with_the_action_server_down_still_opens_with_the_disclosure(live_stack):
    clinic = load_clinic(live_stack.settings.clinic_config)
    who = sender("rest-new")
    with action_server(live_stack, "killed"):
        replies = texts(live_stack.say(who, RED_FLAG))
    assert "automated assistant" in replies
    urgent_first(replies, clinic)
    stored_once(live_stack, who)


def test_a_slow_action_server_stores_the_escalation_once(live_stack):
    clinic = load_clinic(live_stack.settings.clinic_config)
    who = sender("rest-slow")
    live_stack.say(who, "hi")
    process = live_stack.stack.services["actions"].process
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        replies = texts(live_stack.say(who, RED_FLAG))
        elapsed = time.monotonic() - started
        time.sleep(2)  # the action server then wakes up and handles the late request too
    finally:
        os.killpg(process.pid, signal.SIGCONT)
        time.sleep(2 * PROBE_INTERVAL_SECONDS + 0.5)
    # The hang began as the patient wrote: one action timeout on top of an ordinary turn.
    assert elapsed < FIRST_REPLY_SECONDS + live_stack.settings.action_timeout_seconds
    urgent_first(replies, clinic)
    stored_once(live_stack, who)
    time.sleep(3)  # any second copy (the late action, the spool) has been merged by now
    [record] = escalations(live_stack, who)
    assert record.priority == Priority.urgent


def test_a_rest_client_that_gives_up_mid_turn_loses_nothing(live_stack):
    who = sender("rest-gone")
    live_stack.say(who, "hi")
    process = live_stack.stack.services["actions"].process
    os.killpg(process.pid, signal.SIGSTOP)  # the hang begins now: this turn waits for the action timeout
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(
                f"{live_stack.rasa_url}/webhooks/rest/webhook", json={"sender": who, "message": RED_FLAG}, timeout=0.3
            )
        time.sleep(live_stack.settings.action_timeout_seconds + FIRST_REPLY_SECONDS)
    finally:
        os.killpg(process.pid, signal.SIGCONT)
        time.sleep(2 * PROBE_INTERVAL_SECONDS + 0.5)
    assert RED_FLAG in wait_for(lambda: user_texts_in_tracker(live_stack, who), timeout=10)
    stored_once(live_stack, who)


@pytest.mark.parametrize("state", ["killed", "hung"])
async def test_web_chat_red_flag_gets_urgent_guidance_first_and_is_spooled_then_stored(live_stack, state):
    clinic = load_clinic(live_stack.settings.clinic_config)
    patient = await Patient(timeout=30).connect(live_stack.rasa_url, live_stack.web_url)
    try:
        session_id = await patient.start()
        await patient.say("hi", session_id)
        await patient.next("bot_uttered")
        while not await patient.quiet(0.5):
            await patient.next("bot_uttered")
        with action_server(live_stack, state):
            started = time.monotonic()
            await patient.say(RED_FLAG, session_id)
            first = (await patient.next("bot_uttered"))["text"]
            elapsed = time.monotonic() - started
            rest = [first]
            while True:
                try:
                    rest.append((await asyncio.wait_for(patient.next("bot_uttered"), 5))["text"])
                except asyncio.TimeoutError:
                    break
    finally:
        await patient.leave()

    assert elapsed < FIRST_REPLY_SECONDS, f"first web-chat message after {elapsed:.2f} s"
    assert first.startswith(f"Call {clinic.emergency_number} now") or first.startswith(f"Please call {clinic.emergency_number} now")
    assert clinic.phone in "\n".join(rest)
    stored_once(live_stack, session_id)
