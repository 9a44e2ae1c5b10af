"""End-to-end, issue 20 items 2 and 3: the real Rasa server, action server and web app.

* A signed red-flag text while the escalation store is held locked gets the urgent
  guidance in the webhook's answer within 2 s (not a 503), is spooled, and once the
  lock is gone is replayed: the assistant answers it by text and an urgent SMS escalation
  is stored.
* A flood of 100 invented REST senders from one address makes at most the cap of urgent
  cases plus one grouped case, every one of them answered with the urgent guidance; a real
  red flag sent meanwhile from another address (127.0.0.2) gets its own urgent case and
  staff are notified of it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from xml.sax.saxutils import unescape

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import select

from bot.core.store.models import Escalation, OutboxMessage, Priority, Reason, SmsContact
from tests.conftest import require_model
from tests.support.fake_twilio import inbound, signed_post, wait_until
from tests.support.sms_stack import running_sms_stack

pytestmark = pytest.mark.e2e
RED_FLAG = "I can't breathe properly since the needle went in near my ribs"
CAP = 5


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_model()
    # The default cap; the whole module talks from loopback, so only the flood test raises urgent REST cases.
    with running_sms_stack(tmp_path_factory.mktemp("faults-var"), URGENT_PER_ADDRESS_PER_HOUR=str(CAP)) as running:
        yield running


@contextlib.contextmanager
def store_locked(stack):
    path = stack.stack.settings.database_url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path, timeout=5, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def test_a_red_flag_text_with_the_store_locked_is_answered_at_once_spooled_and_replayed(stack):
    patient = "+4477009" + str(uuid.uuid4().int)[:5]
    with store_locked(stack):
        started = time.monotonic()
        reply = signed_post(stack.webhook, inbound(patient, RED_FLAG))
        elapsed = time.monotonic() - started
        assert reply.status_code == 200, reply.text
        assert elapsed < 2.0, elapsed
        first = unescape(reply.text.split("<Message>")[1].split("</Message>")[0])
        assert "999" in first  # the urgent guidance comes first ...
        assert "call us on" in reply.text
        assert stack.fake.bodies(patient) == []  # nothing could be queued while the store was locked

    # ... in the assistant's own words for this red flag (as the web chat gives it).
    rest = f"http://127.0.0.1:{stack.stack.settings.rasa_port}/webhooks/rest/webhook"
    chat = [" ".join(m.get("text", "").split()) for m in say(rest, f"compare-{uuid.uuid4().hex[:6]}", RED_FLAG)]
    assert first in chat and "automated assistant" not in first
    # Replayed once the store answers: the assistant's answer by text, and the urgent escalation.
    wait_until(lambda: stack.fake.bodies(patient), timeout=60)
    contact = stack.contact(patient)
    escalation = wait_until(
        lambda: stack.query(select(Escalation).where(Escalation.sender_id == contact.sender_id)), timeout=30
    )[0]
    assert (escalation.reason, escalation.priority, escalation.channel) == (Reason.emergency, Priority.urgent, "sms")


class FromAddress(HTTPAdapter):
    """Requests from another loopback address: another client address for the Rasa server."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def say(url: str, sender: str, text: str, session: requests.Session | None = None) -> list[dict]:
    reply = (session or requests).post(url, json={"sender": sender, "message": text}, timeout=60)
    reply.raise_for_status()
    return reply.json()


def test_a_flood_of_invented_senders_is_capped_and_a_real_red_flag_still_stored_and_alerted(stack):
    url = f"http://127.0.0.1:{stack.stack.settings.rasa_port}/webhooks/rest/webhook"
    other = requests.Session()
    other.mount("http://", FromAddress("127.0.0.2"))
    answers, run = [], uuid.uuid4().hex[:6]
    for n in range(100):
        answers.append(say(url, f"flood-{run}-{n}", RED_FLAG))
        if n == 50:
            real = say(url, f"real-{run}", RED_FLAG, session=other)

    assert all(any("999" in (m.get("text") or "") for m in answer) for answer in answers)  # guidance every time
    assert any("999" in (m.get("text") or "") for m in real)
    senders = {f"flood-{run}-{n}" for n in range(100)}
    rows = wait_until(lambda: [
        row for row in stack.query(select(Escalation).where(Escalation.reason == Reason.emergency))
        if row.sender_id in senders or row.possible_abuse
    ] if len(stack.query(select(Escalation))) > CAP else None, timeout=30)
    own = [row for row in rows if not row.possible_abuse]
    grouped = [row for row in rows if row.possible_abuse]
    assert len(own) <= CAP and len(grouped) == 1
    assert len(own) + grouped[0].occurrences == 100  # nothing dropped
    [real_case] = stack.query(select(Escalation).where(Escalation.sender_id == f"real-{run}"))
    assert real_case.priority == Priority.urgent and not real_case.possible_abuse
    told = wait_until(lambda: stack.query(
        select(OutboxMessage).where(OutboxMessage.escalation_id == real_case.id, OutboxMessage.sent_at.is_not(None))
    ), timeout=30)
    assert told
    assert not stack.query(select(SmsContact).where(SmsContact.sender_id == real_case.sender_id))
