"""The web chat's "the reply will appear here" promise names the window in which a staff line is really delivered."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actions import deps
from actions.escalation import chat_follow_up, spoken_duration
from bot.core.store import chat
from bot.core.store.models import StaffChatLine, utcnow
from tests.support.cases import add_case


@pytest.mark.parametrize("window, spoken", [
    (timedelta(minutes=60), "hour"), (timedelta(hours=2), "2 hours"), (timedelta(minutes=90), "90 minutes"),
])
def test_the_window_is_spoken_as_a_patient_reads_it(window, spoken):
    assert spoken_duration(window) == spoken


def test_the_promise_names_the_delivery_window_and_what_to_do_after_it():
    promise = chat_follow_up(True)
    clinic = deps.clinic()
    window = spoken_duration(chat.PENDING_WINDOW)
    assert "the reply will appear here" in promise
    assert f"within the next {window}" in promise
    assert "After that" in promise and clinic.phone in promise  # what to do once the window has passed
    assert "Keep this chat open or come back to it: the reply will appear here." not in promise  # the old, open-ended one


def test_a_longer_delivery_window_changes_the_promise_with_it():
    assert "within the next 2 hours" in chat_follow_up(True, timedelta(hours=2))
    assert "within the next hour" not in chat_follow_up(True, timedelta(hours=2))


def test_without_staff_signed_in_nothing_is_promised_here():
    promise = chat_follow_up(False)
    assert "appear here" not in promise and deps.clinic().phone in promise


async def test_the_promised_window_is_the_one_the_delivery_keeps_a_line_waiting_for(sessions):
    """A line written just inside the promised window still reaches the returning patient; one just outside does not."""
    case_id = await add_case(sessions, channel="socketio", sender="web-1")
    now = utcnow()
    inside = now - chat.PENDING_WINDOW + timedelta(minutes=1)
    outside = now - chat.PENDING_WINDOW - timedelta(minutes=1)
    async with sessions() as session, session.begin():
        for written in (inside, outside):
            session.add(StaffChatLine(
                escalation_id=case_id, sender_id="web-1", author_username="sam", author_name="Sam",
                body="We can see you on Tuesday.", created_at=written, logged_at=written,
            ))
    async with sessions() as session:
        waiting = await chat.pending_lines(session, "web-1", now)
    assert [line.created_at for line in waiting] == [inside]
    assert f"within the next {spoken_duration(chat.PENDING_WINDOW)}" in chat_follow_up(True)
