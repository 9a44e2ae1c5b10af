"""A curated FAQ answer's short version reaches the web chat beside the full answer, and nowhere else.

The agent here replies the way Rasa's processor does for a response action: the project's
NLG (:class:`bot.assistant.nlg.ClinicNLG`) generates the message from the real domain and
answers, :func:`create_bot_utterance` makes the ``BotUttered`` event, and its ``message()``
goes to the channel's ``send_response``. The patient's text names the response to utter.
Both channels run on a real Sanic server (``tests/channels/conftest.py``); the socket.io
side is read with a standard python-socketio client.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import aiohttp
import pytest
import yaml
from rasa.core.actions.action import create_bot_utterance
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOOutput
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from bot.assistant.channels.socketio import KB_KEY, SHORT_KEY
from bot.assistant.nlg import SHORT_TEXT, ClinicNLG
from bot.core.clinic import load_clinic
from bot.core.knowledge.catalog import short_answers
from bot.core.settings import REPO_ROOT
from tests.channels.conftest import CLINIC_ORIGIN
from tests.support.socketio_client import Patient

CLINIC = load_clinic(REPO_ROOT / "clinic.yml")
#: An answer whose short version names the clinic's phone, and one with follow-up buttons.
WITH_PHONE = "utter_faq/session_length"
#: A curated answer that is not an FAQ answer (it has ``metadata.kb`` but no short version).
NOT_FAQ = "utter_contraindication_general"
#: The same FAQ answer written in paragraphs: Rasa sends each as its own ``bot_uttered``.
IN_PARAGRAPHS = "utter_faq/what_to_expect"


def domain() -> Domain:
    """The real domain and curated answers, plus :data:`IN_PARAGRAPHS` split into three paragraphs."""
    real = Domain.load([str(REPO_ROOT / "domain.yml"), str(REPO_ROOT / "data" / "responses")])
    raw = real.as_dict()
    variant = copy.deepcopy(raw["responses"][IN_PARAGRAPHS][0])
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(variant["text"].split()))
    assert len(sentences) >= 3, "the answer needs three sentences to make three paragraphs"
    third = len(sentences) // 3
    paragraphs = [sentences[:third], sentences[third : 2 * third], sentences[2 * third :]]
    variant["text"] = "\n\n".join(" ".join(paragraph) for paragraph in paragraphs)
    raw["responses"][IN_PARAGRAPHS] = [variant]
    return Domain.from_dict(raw)


DOMAIN = domain()
NLG = ClinicNLG(domain=DOMAIN, clinic=CLINIC)


async def bot_message(name: str, channel: str) -> dict[str, Any]:
    """What Rasa's processor hands the output channel when ``name`` is uttered on ``channel``."""
    tracker = DialogueStateTracker.from_events("patient", [], slots=DOMAIN.slots)
    message = await NLG.generate(name, tracker, channel)
    assert message is not None, name
    message["utter_action"] = name
    return create_bot_utterance(message).message()


@pytest.fixture
async def answering_server(channel_server, monkeypatch):
    """The channel server, its agent uttering the response the patient's text names."""

    async def handle_message(message: UserMessage) -> None:
        channel_server.agent.received.append(message)
        out = message.output_channel
        await out.send_response(message.sender_id, await bot_message(message.text, out.name()))

    monkeypatch.setattr(channel_server.agent, "handle_message", handle_message)
    return channel_server


@pytest.fixture
async def patient(answering_server):
    patient = Patient()
    await patient.connect(answering_server.url, CLINIC_ORIGIN)
    yield patient
    await patient.leave()


class Recorder:
    """Stands in for python-socketio's server: records what Rasa's own ``SocketIOOutput`` emits."""

    def __init__(self) -> None:
        self.emitted: list[dict[str, Any]] = []

    async def emit(self, event: str, data: Any, **_: Any) -> None:
        self.emitted.append(data)


async def stock_socketio_parts(name: str) -> list[dict[str, Any]]:
    """The ``bot_uttered`` payloads Rasa's unmodified socket.io output sends for ``name``."""
    recorder = Recorder()
    await SocketIOOutput(recorder, "bot_uttered").send_response("room", await bot_message(name, "socketio"))
    return recorder.emitted


async def received(patient: Patient, name: str, parts: int) -> list[dict[str, Any]]:
    session_id = await patient.start()
    await patient.say(name, session_id)
    payloads = [await patient.next("bot_uttered") for _ in range(parts)]
    assert await patient.quiet(0.3)
    return payloads


def filled_short(name: str) -> str:
    """The short version from the knowledge base, filled in for the clinic."""
    return short_answers()[name].format_map(CLINIC.template_values())


async def test_an_faq_answer_carries_its_short_version_filled_in_on_the_first_part(patient):
    expected = await stock_socketio_parts(WITH_PHONE)
    [payload] = await received(patient, WITH_PHONE, len(expected))
    short = payload.pop(SHORT_KEY)
    payload.pop(KB_KEY)  # its sources line (test_socketio_sources.py)
    assert short == {"text": filled_short(WITH_PHONE), "parts": 1}
    assert CLINIC.phone in short["text"] and "{" not in short["text"]
    assert len(short["text"]) <= 320
    # Everything else is what Rasa's own channel sends: the full text, the follow-up buttons.
    assert [payload] == expected
    assert payload["quick_replies"], "the follow-up offer's buttons stay with the full answer"


async def test_each_part_of_a_long_answer_says_it_belongs_to_the_answer(patient):
    expected = await stock_socketio_parts(IN_PARAGRAPHS)
    assert len(expected) == 3
    payloads = await received(patient, IN_PARAGRAPHS, 3)
    marks = [payload.pop(SHORT_KEY) for payload in payloads]
    payloads[-1].pop(KB_KEY)  # its sources line (test_socketio_sources.py)
    assert marks == [{"text": filled_short(IN_PARAGRAPHS), "parts": 3}, {"part": 2}, {"part": 3}]
    assert payloads == expected


async def test_other_answers_carry_no_short_version(patient):
    expected = await stock_socketio_parts(NOT_FAQ)
    payloads = await received(patient, NOT_FAQ, len(expected))
    assert payloads == expected
    assert all(SHORT_KEY not in payload for payload in payloads)


@pytest.mark.parametrize("name", [WITH_PHONE, IN_PARAGRAPHS, NOT_FAQ])
async def test_rest_output_is_what_rasas_collecting_channel_gives_without_the_short_version(answering_server, name):
    message = await bot_message(name, "rest")
    if name != NOT_FAQ:
        assert message[SHORT_TEXT] == filled_short(name), "the NLG gave the answer its short version"
    stock = CollectingOutputChannel()
    await stock.send_response("rest-patient", {k: v for k, v in message.items() if k != SHORT_TEXT})
    async with aiohttp.ClientSession() as http:
        async with http.post(answering_server.webhook, json={"sender": "rest-patient", "message": name}) as reply:
            assert reply.status == 200
            body = await reply.json()
    assert body == stock.messages
    assert not any(SHORT_KEY in part or SHORT_TEXT in part for part in body)
    assert "\n\n".join(part["text"] for part in body) == message["text"].strip()


async def test_every_faq_answer_and_only_those_get_the_knowledge_bases_short_version():
    document = yaml.safe_load((REPO_ROOT / "data" / "responses" / "faq.yml").read_text(encoding="utf-8"))
    faq = [name for name in document["responses"] if name.startswith("utter_faq/")]
    assert faq
    tracker = DialogueStateTracker.from_events("patient", [], slots=DOMAIN.slots)
    shorts = {}
    for name in DOMAIN.responses:
        message = await NLG.generate(name, tracker, "socketio") or {}
        if SHORT_TEXT in message:
            shorts[name] = message[SHORT_TEXT]
    assert shorts == {name: filled_short(name) for name in faq}
