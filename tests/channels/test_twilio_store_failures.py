"""Nothing lost on the SMS path: a text the store cannot take is spooled, answered at once, and replayed.

Twilio does not retry an incoming text, so a 503 loses it. With the store held locked
(another connection's exclusive transaction on the SQLite file), hanging (a PostgreSQL
address that accepts and never answers) or down (nothing listens), a signed text still
gets 200 within the bound with its answer in the TwiML: the urgent guidance first for a
red flag. The spooled text is replayed into the ordinary path once the store is back.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time

from xml.sax.saxutils import escape

import pytest
from sqlalchemy.exc import OperationalError

from bot.core.messaging.inbound_spool import InboundSpool
from bot.core.store.models import SmsInbound
from tests.support.fake_twilio import inbound, message_sid
from tests.support.sms_channel import RED_FLAG, start_sms_server, stop_sms_server

PATIENT = "+447700900123"
BOUND = 1.0
#: Bound plus the answer composed without the store, on a busy machine.
ANSWERED_WITHIN = BOUND + 1.0


@pytest.fixture
async def serve(fake_twilio, monkeypatch):
    started = []

    async def start(db_url, replay_every=3600.0, **overrides):
        """The channel on ``db_url``; it replays its spool at start, then every ``replay_every`` seconds."""
        monkeypatch.setattr("bot.assistant.channels.twilio_sms.REPLAY_INTERVAL_SECONDS", replay_every)
        fake_twilio.clear()
        sms, server = await start_sms_server(db_url, fake_twilio, sms_store_timeout_seconds=BOUND, **overrides)
        started.append((sms, server))
        return sms

    yield start
    for sms, server in started:
        await stop_sms_server(sms, server)


@contextlib.contextmanager
def locked(db_url: str):
    """Hold the SQLite store's write lock from another connection, as a long transaction elsewhere would."""
    connection = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=1, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


async def timed_text(sms, params):
    started = time.monotonic()
    status, body = await sms.text(params)
    return status, body, time.monotonic() - started


async def test_a_red_flag_while_the_store_is_locked_gets_the_urgent_guidance_at_once_and_is_replayed(
    serve, db_url, caplog
):
    sms = await serve(db_url)
    params = inbound(PATIENT, RED_FLAG)

    with locked(db_url):
        status, body, elapsed = await timed_text(sms, params)
        assert sms.channel.spool.pending() == 1

    assert status == 200 and elapsed < ANSWERED_WITHIN
    messages = body.split("<Message>")[1:]
    assert len(messages) == 2
    assert messages[0] == escape(sms.channel._urgent_guidance) + "</Message>"  # the urgent guidance first
    assert "please get help first and then call us on" in messages[1]
    assert sms.agent.received == []  # nothing read by the assistant yet: it is spooled

    assert await sms.channel.replay_spool() == 1

    assert [m.text for m in sms.agent.received] == [RED_FLAG]
    assert sms.channel.spool.pending() == 0
    assert [row.message_sid for row in await sms.rows(SmsInbound)] == [params["MessageSid"]]
    assert await sms.sent_to(PATIENT, 1) == [f"echo: {RED_FLAG}"]
    assert "7700900123" not in caplog.text and RED_FLAG not in caplog.text


async def test_an_ordinary_text_while_the_store_is_locked_is_kept_and_the_patient_told(serve, db_url):
    sms = await serve(db_url)

    with locked(db_url):
        status, body, elapsed = await timed_text(sms, inbound(PATIENT, "how long does soreness last?"))

    assert status == 200 and elapsed < ANSWERED_WITHIN
    assert "kept your message" in body and sms.channel.clinic.phone in body
    assert "call 999" not in body.split("emergency")[0]  # no urgent guidance for an ordinary question
    await sms.channel.replay_spool()
    assert await sms.sent_to(PATIENT, 1) == ["echo: how long does soreness last?"]


async def test_the_channels_own_replay_takes_the_spool_in_once_the_lock_is_gone(serve, db_url):
    sms = await serve(db_url, replay_every=0.2)

    with locked(db_url):
        await sms.text(inbound(PATIENT, "first"))
        await sms.text(inbound(PATIENT, "second"))

    assert await sms.sent_to(PATIENT, 2) == ["echo: first", "echo: second"]  # in the order they came
    assert sms.channel.spool.pending() == 0


async def test_a_red_flag_while_the_store_hangs_is_answered_within_the_bound(serve, hanging_database):
    sms = await serve(hanging_database.postgres_url)

    status, body, elapsed = await timed_text(sms, inbound(PATIENT, RED_FLAG))

    assert status == 200 and elapsed < ANSWERED_WITHIN
    assert body.count("<Message>") == 2 and "call 999" in body
    assert sms.channel.spool.pending() == 1
    assert hanging_database.accepted


async def test_a_text_while_the_store_is_down_is_spooled_not_refused(serve):
    sms = await serve("postgresql+asyncpg://u:p@127.0.0.1:1/db")

    status, body, _ = await timed_text(sms, inbound(PATIENT, RED_FLAG))
    assert status == 200 and "call 999" in body
    status, body, _ = await timed_text(sms, inbound(PATIENT, "HELP"))
    assert status == 200 and "Reply STOP" in body
    status, body, _ = await timed_text(sms, inbound(PATIENT, "STOP"))
    assert status == 200 and "<Message>" not in body  # recorded at replay, which sends the one confirmation

    assert sms.channel.spool.pending() == 3


async def test_stop_sent_while_the_store_was_locked_opts_out_at_replay(serve, db_url):
    sms = await serve(db_url)

    with locked(db_url):
        await sms.text(inbound(PATIENT, "STOP"))
    await sms.channel.replay_spool()

    assert (await sms.contact(PATIENT)).opted_out_at is not None
    assert sms.agent.received == []


async def test_a_text_whose_take_in_committed_after_the_time_out_is_still_read_at_replay(serve, db_url):
    sms = await serve(db_url)
    params = inbound(PATIENT, "hello")
    from bot.core.messaging.addresses import parse_address

    # The webhook gave up on the store, then the abandoned take-in committed after all.
    await sms.channel.service.take_in(parse_address(PATIENT), params["MessageSid"])
    from bot.core.messaging.inbound_spool import SpooledText

    sms.channel.spool.append(SpooledText(PATIENT, params["MessageSid"], "hello", 0, "2026-12-07T12:00:00+00:00"))
    assert await sms.channel.replay_spool() == 1
    assert [m.text for m in sms.agent.received] == ["hello"]


async def test_replies_the_store_cannot_queue_go_out_in_the_webhooks_answer(serve, db_url, caplog):
    sms = await serve(db_url)

    async def broken_queue(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    sms.channel.service.queue_turn = broken_queue
    caplog.set_level(logging.INFO)
    status, body = await sms.text(inbound(PATIENT, "menu"))

    assert status == 200
    assert "What would you like to know about dry needling?" in body and "Reply 1 for" in body
    assert "<Message>" in body and sms.channel.spool.pending() == 0  # read once: not spooled again
    assert "7700900123" not in caplog.text


async def test_patient_text_is_escaped_in_the_twiml(serve, db_url):
    sms = await serve(db_url)

    async def broken_queue(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    sms.channel.service.queue_turn = broken_queue
    status, body = await sms.text(inbound(PATIENT, "a <b>bold</b> & question"))
    assert status == 200
    assert "echo: a &lt;b&gt;bold&lt;/b&gt; &amp; question" in body


async def test_a_duplicate_message_sid_is_still_acknowledged_once(serve, db_url):
    sms = await serve(db_url)
    params = inbound(PATIENT, "are you there?", sid=message_sid())
    await sms.text(params)
    status, body = await sms.text(params)
    assert status == 200 and "<Message>" not in body
    assert len(sms.agent.received) == 1


def test_spool_files_are_private(tmp_path):
    from bot.core.messaging.inbound_spool import SpooledText

    spool = InboundSpool(tmp_path / "spool")
    spool.append(SpooledText(PATIENT, message_sid(), "hello", 0, "2026-12-07T12:00:00+00:00"))
    assert (spool.path.stat().st_mode & 0o777) == 0o600
    assert (spool.directory.stat().st_mode & 0o777) == 0o700
