"""The Rasa server's calls to the action server (bot/assistant/servers/action_client.py).

Through Rasa's own ``RemoteAction``: with the action server refusing, hung, or failing, an
emergency is written to the spool by the Rasa process and the patient gets the clinic's
phone number and the emergency slots; the wait is bounded by the timeout, and a hung
action server is then skipped; a form's rejection (400) still reaches Rasa.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

from bot.assistant.nlg import ClinicNLG
from bot.assistant.servers.action_client import PROBE_INTERVAL_SECONDS, PROBE_MISSES, PROBE_TIMEOUT_SECONDS, GuardedActionEndpoint, LocalFallback
from bot.core.clinic import load_clinic
from bot.core.escalation.spool import Spool, decode
from bot.core.settings import REPO_ROOT
from bot.core.store.models import Priority, Reason
from bot.launch import free_port
from tests.support.silent_server import SilentServer

TIMEOUT = 0.5
PATIENT_TEXT = "my chest is tight and I can't breathe since the needling"
DOMAIN = Domain.load([str(REPO_ROOT / "domain.yml"), str(REPO_ROOT / "data" / "responses" / "safety.yml")])
CLINIC = load_clinic(REPO_ROOT / "clinic.yml")


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


MADE: list[GuardedActionEndpoint] = []


@pytest.fixture(autouse=True)
async def stop_watchers():
    yield
    while MADE:
        await MADE.pop().close()


def endpoint(url: str, spool: Spool) -> GuardedActionEndpoint:
    made = GuardedActionEndpoint(EndpointConfig(url, headers={"X-Action-Secret": "s"}), TIMEOUT, LocalFallback(spool))
    MADE.append(made)
    return made


def tracker(safety: dict, **slots) -> DialogueStateTracker:
    parse = {"intent": {"name": "report_adverse_event", "confidence": 1.0}, "entities": [], "safety": safety, "text": PATIENT_TEXT}
    events = [UserUttered(PATIENT_TEXT, parse["intent"], [], parse, input_channel="rest")]
    events += [SlotSet(name, value) for name, value in slots.items()]
    return DialogueStateTracker.from_events("patient-7", events, slots=DOMAIN.slots)


async def run(action: str, where: GuardedActionEndpoint, state: DialogueStateTracker) -> list:
    nlg = ClinicNLG(domain=DOMAIN, clinic=CLINIC)
    return await RemoteAction(action, where).run(CollectingOutputChannel(), nlg, state, DOMAIN)


def texts(events: list) -> str:
    return " ".join(e.text for e in events if isinstance(e, BotUttered))


EMERGENCY = {"reason": "emergency", "red_flag_class": "breathing", "care": "999", "matched_terms": ["breathing:cant breathe"]}


async def test_an_emergency_with_the_action_server_down_is_spooled_by_the_rasa_process(spool):
    events = await run("action_handle_adverse_event", endpoint(f"http://127.0.0.1:{free_port()}/webhook", spool),
                       tracker(EMERGENCY, contact_name="Ana"))

    assert CLINIC.phone in texts(events) and "couldn't pass this to the clinic team" in texts(events)
    assert SlotSet("emergency", True) in events and SlotSet("escalation_reason", "emergency") in events
    [line] = spool.path.read_text().splitlines()
    record = decode(line)
    assert (record.sender_id, record.reason, record.priority) == ("patient-7", Reason.emergency, Priority.urgent)
    assert record.contact_name == "Ana" and record.consent_given is None
    assert record.trigger["red_flag_class"] == "breathing"
    assert record.transcript[0]["text"] == PATIENT_TEXT


async def test_an_adverse_event_with_the_action_server_down_is_spooled_as_high_priority(spool):
    safety = {"reason": "adverse_event", "adverse_class": "tingling"}
    events = await run("action_handle_adverse_event", endpoint(f"http://127.0.0.1:{free_port()}/webhook", spool), tracker(safety))

    assert CLINIC.phone in texts(events)
    assert SlotSet("escalation_reason", "adverse_event") in events
    assert decode(spool.path.read_text().splitlines()[0]).priority == Priority.high


async def test_a_hung_action_server_costs_one_timeout_then_is_skipped(spool):
    silent = SilentServer().start()
    try:
        where = endpoint(f"http://127.0.0.1:{silent.port}/webhook", spool)
        started = time.monotonic()
        first = await run("action_handle_adverse_event", where, tracker(EMERGENCY))
        first_wait = time.monotonic() - started
        started = time.monotonic()
        second = await run("action_session_start", where, tracker({}))
        second_wait = time.monotonic() - started
    finally:
        silent.stop()

    assert TIMEOUT <= first_wait < TIMEOUT + 2.0  # the timeout, then the spool's fsync on a busy machine
    assert SlotSet("emergency", True) in first
    assert second_wait < TIMEOUT  # no second timeout
    assert any(isinstance(e, SessionStarted) for e in second)
    assert "automated assistant" in texts(second)
    assert spool.pending() == 1


async def test_an_action_server_hung_for_a_while_costs_no_timeout_at_all(spool):
    silent = SilentServer().start()
    try:
        where = endpoint(f"http://127.0.0.1:{silent.port}/webhook", spool)
        where.start_watching()
        await asyncio.sleep(PROBE_MISSES * (PROBE_INTERVAL_SECONDS + PROBE_TIMEOUT_SECONDS) + 0.5)
        started = time.monotonic()
        events = await run("action_handle_adverse_event", where, tracker(EMERGENCY))
        waited = time.monotonic() - started
    finally:
        silent.stop()
    assert where.hung
    assert waited < TIMEOUT  # no timeout waited at all
    assert SlotSet("emergency", True) in events and spool.pending() == 1


async def test_the_health_watcher_clears_a_skip_once_the_action_server_answers(spool):
    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        where = endpoint(f"http://127.0.0.1:{port}/webhook", spool)
        where.hung, where.skip_until = True, time.monotonic() + 60
        where.start_watching()
        await asyncio.sleep(PROBE_INTERVAL_SECONDS + 0.5)
    finally:
        await runner.cleanup()
    assert (where.hung, where.skip_until) == (False, 0.0)


async def test_a_declined_offer_with_the_action_server_down_is_noted_on_the_spooled_incident(spool):
    events = await run("action_decline_contact", endpoint(f"http://127.0.0.1:{free_port()}/webhook", spool),
                       tracker({}, escalation_reason="adverse_event"))

    assert "No problem" in texts(events)
    record = decode(spool.path.read_text().splitlines()[0])
    assert (record.reason, record.consent_given) == (Reason.adverse_event, False)


async def action_server(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/webhook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/webhook"


async def test_a_failing_action_server_gets_the_same_fallback(spool):
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    runner, url = await action_server(broken)
    try:
        events = await run("action_handle_adverse_event", endpoint(url, spool), tracker(EMERGENCY))
    finally:
        await runner.cleanup()
    assert SlotSet("emergency", True) in events and spool.pending() == 1


async def test_a_forms_rejection_still_reaches_rasa(spool):
    async def rejecting(request: web.Request) -> web.Response:
        body = {"action_name": "validate_contact_form", "error": "no"}
        return web.Response(status=400, text=json.dumps(body), content_type="application/json")

    runner, url = await action_server(rejecting)
    try:
        with pytest.raises(ClientResponseError):
            await endpoint(url, spool).request(json={"next_action": "validate_contact_form", "tracker": {}})
    finally:
        await runner.cleanup()
    assert spool.pending() == 0


async def test_an_action_with_no_fallback_fails_as_before(spool):
    with pytest.raises(aiohttp.ClientConnectionError):
        await endpoint(f"http://127.0.0.1:{free_port()}/webhook", spool).request(
            json={"next_action": "action_handle_contraindication", "tracker": {}}
        )


async def test_a_working_action_server_answers_as_usual(spool):
    async def working(request: web.Request) -> web.Response:
        return web.json_response({"events": [], "responses": [{"response": "utter_emergency_flagged"}]})

    runner, url = await action_server(working)
    try:
        events = await run("action_handle_adverse_event", endpoint(url, spool), tracker(EMERGENCY))
    finally:
        await runner.cleanup()
    assert "alerted" in texts(events) and spool.pending() == 0


URGENT = 0.4


def urgent_endpoint(url: str, spool: Spool, timeout: float = 3.0) -> GuardedActionEndpoint:
    made = GuardedActionEndpoint(EndpointConfig(url), timeout, LocalFallback(spool), urgent_timeout=URGENT)
    MADE.append(made)
    return made


async def slow_action_server(delay: float) -> tuple[web.AppRunner, str]:
    """An action server that takes ``delay`` seconds per action and answers its health check at once."""
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.json_response({"events": [], "responses": [{"response": "utter_emergency_flagged"}]})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhook", slow)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/webhook"


async def test_an_emergency_waits_only_the_urgent_timeout_for_an_action_server_that_hangs_as_it_is_called(spool):
    silent = SilentServer().start()  # accepts connections, answers nothing: neither the action nor /health
    try:
        where = urgent_endpoint(f"http://127.0.0.1:{silent.port}/webhook", spool)
        started = time.monotonic()
        events = await run("action_handle_adverse_event", where, tracker(EMERGENCY))
        waited = time.monotonic() - started
    finally:
        silent.stop()
    assert URGENT <= waited < URGENT + 1.0, waited  # not the 3 s action timeout
    assert SlotSet("emergency", True) in events and "couldn't pass this to the clinic team" in texts(events)
    assert spool.pending() == 1
    assert where.skip_until > time.monotonic()  # the rest of the turn does not wait for it again


async def test_a_slow_action_server_that_answers_its_health_check_records_the_emergency_itself(spool):
    runner, url = await slow_action_server(delay=URGENT + 0.8)
    try:
        started = time.monotonic()
        events = await run("action_handle_adverse_event", urgent_endpoint(url, spool), tracker(EMERGENCY))
        waited = time.monotonic() - started
    finally:
        await runner.cleanup()
    assert waited >= URGENT + 0.8
    assert "alerted" in texts(events) and "couldn't pass" not in texts(events)  # no false "could not reach"
    assert spool.pending() == 0  # and no second copy


async def test_the_urgent_timeout_is_for_emergencies_only(spool):
    silent = SilentServer().start()
    try:
        where = urgent_endpoint(f"http://127.0.0.1:{silent.port}/webhook", spool, timeout=1.2)
        started = time.monotonic()
        await run("action_handle_adverse_event", where, tracker({"reason": "adverse_event", "adverse_class": "tingling"}))
        waited = time.monotonic() - started
    finally:
        silent.stop()
    assert waited >= 1.2  # an adverse event that is not an emergency keeps the ordinary timeout
    assert spool.pending() == 1


async def test_calls_reuse_one_kept_alive_connection(spool):
    peers = []

    async def working(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response({"events": [], "responses": []})

    runner, url = await action_server(working)
    try:
        where = endpoint(url, spool)
        for _ in range(3):
            await where.request(json={"next_action": "action_session_start", "tracker": {}})
        session = where.client()
        await where.close()
        assert session.closed
    finally:
        await runner.cleanup()
    assert len(peers) == 3 and len(set(peers)) == 1  # one TCP connection (client port) for the three calls


async def test_a_connection_the_server_dropped_is_retried_once_on_a_new_one(spool):
    calls = []

    async def drop_first(request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            request.transport.close()  # as a server closing an idle kept-alive connection would
            raise web.HTTPInternalServerError()
        return web.json_response({"events": [], "responses": [{"response": "utter_emergency_flagged"}]})

    runner, url = await action_server(drop_first)
    try:
        events = await run("action_handle_adverse_event", endpoint(url, spool), tracker(EMERGENCY))
    finally:
        await runner.cleanup()
    assert "alerted" in texts(events) and len(calls) == 2 and spool.pending() == 0
