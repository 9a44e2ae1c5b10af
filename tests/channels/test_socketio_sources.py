"""A curated FAQ answer's sources, version and review date reach the web chat beside it, and nothing else's.

Uses the agent of :mod:`tests.channels.test_socketio_short_answers`: the project's NLG
generates the real curated answer, Rasa's ``create_bot_utterance`` makes the event, and
its message goes to the channel's ``send_response`` on a real Sanic server, read with a
standard python-socketio client. The expected line is built from the knowledge base
(``data/responses/faq.yml`` and ``bot/core/knowledge/sources.yml``) independently of the
channel's own resolver.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bot.assistant.channels.socketio import KB_KEY, SHORT_KEY
from bot.core.knowledge import catalog
from tests.channels.test_socketio_short_answers import (  # noqa: F401 - fixtures used by name
    IN_PARAGRAPHS,
    NOT_FAQ,
    WITH_PHONE,
    answering_server,
    patient,
    received,
    stock_socketio_parts,
)

KB = catalog.load()
#: Replies that are not curated FAQ answers: a greeting, the urgent red-flag guidance
#: (curated, but no sources line under an emergency) and a curated safety answer.
NOT_CURATED = ["utter_greet", "utter_red_flag_urgent", NOT_FAQ]


def expected_line(name: str) -> dict[str, Any]:
    """The sources line of ``name`` as the knowledge base defines it."""
    answer = KB.answers[name]
    sources = []
    for source_id in answer.sources:
        source = KB.sources[source_id]
        entry = {"name": source.name}
        if source.url.startswith("https://"):
            entry["url"] = source.url
        sources.append(entry)
    return {
        "title": answer.title,
        "version": answer.version,
        "reviewed": answer.reviewed.isoformat(),
        "sources": sources,
    }


async def test_a_curated_answer_carries_its_sources_version_and_review_date(patient):  # noqa: F811
    expected = await stock_socketio_parts(WITH_PHONE)
    [payload] = await received(patient, WITH_PHONE, len(expected))
    line = payload.pop(KB_KEY)
    assert line == expected_line(WITH_PHONE)
    assert line["version"] >= 1 and line["reviewed"] == "2026-12-07"
    names = [source["name"] for source in line["sources"]]
    assert names and all(names)
    assert all(source["url"].startswith("https://") for source in line["sources"])
    payload.pop(SHORT_KEY)
    assert [payload] == expected, "text and buttons stay exactly Rasa's"


async def test_only_the_last_part_of_a_long_answer_carries_the_line(patient):  # noqa: F811
    expected = await stock_socketio_parts(IN_PARAGRAPHS)
    payloads = await received(patient, IN_PARAGRAPHS, len(expected))
    assert [KB_KEY in payload for payload in payloads] == [False, False, True]
    assert payloads[-1].pop(KB_KEY) == expected_line(IN_PARAGRAPHS)
    for payload in payloads:
        payload.pop(SHORT_KEY)
    assert payloads == expected


@pytest.mark.parametrize("name", NOT_CURATED)
async def test_other_replies_carry_no_sources(patient, name):  # noqa: F811
    expected = await stock_socketio_parts(name)
    payloads = await received(patient, name, len(expected))
    assert all(KB_KEY not in payload for payload in payloads)
    assert payloads == expected


async def test_rest_clients_get_no_sources(answering_server):  # noqa: F811
    async with aiohttp.ClientSession() as http:
        async with http.post(answering_server.webhook, json={"sender": "rest-patient", "message": WITH_PHONE}) as reply:
            assert reply.status == 200
            body = await reply.json()
    assert body and all(KB_KEY not in part for part in body)
