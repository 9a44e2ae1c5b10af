"""The patient's wait against the promise the assistant made, from clinic.yml's opening hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.core.clinic import Clinic
from bot.dashboard.staff.waiting import describe, promised_by, wait_of

LONDON = ZoneInfo("Europe/London")
CLINIC = Clinic(
    name="Riverside Physiotherapy", phone="020 7946 0958", booking_url="https://clinic.example/book",
    timezone="Europe/London",
    opening_hours={
        "mon": ["08:00", "19:00"], "tue": ["08:00", "19:00"], "wed": ["08:00", "19:00"],
        "thu": ["08:00", "19:00"], "fri": ["08:00", "17:00"], "sat": ["09:00", "13:00"],
    },
    follow_up_within_hours=2,
)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def test_a_promise_made_while_open_is_due_within_the_configured_hours():
    # Monday 2024-07-01 10:00 BST (09:00 UTC): open.
    assert promised_by(CLINIC, london(2024, 7, 1, 10, 0)) == london(2024, 7, 1, 12, 0)


def test_a_promise_made_before_opening_is_due_hours_after_the_opening():
    assert promised_by(CLINIC, london(2024, 7, 1, 6, 30)) == london(2024, 7, 1, 10, 0)


def test_a_promise_made_after_closing_is_due_the_next_morning():
    assert promised_by(CLINIC, london(2024, 7, 1, 19, 0)) == london(2024, 7, 2, 10, 0)


def test_a_friday_evening_promise_is_due_on_saturday_morning():
    assert promised_by(CLINIC, london(2024, 7, 5, 17, 30)) == london(2024, 7, 6, 11, 0)


def test_a_saturday_afternoon_promise_is_due_on_monday():
    assert promised_by(CLINIC, london(2024, 7, 6, 14, 0)) == london(2024, 7, 8, 10, 0)


def test_a_sunday_promise_is_due_on_monday():
    assert promised_by(CLINIC, london(2024, 7, 7, 23, 59)) == london(2024, 7, 8, 10, 0)


def test_the_deadline_matches_the_sentence_the_patient_read():
    when = london(2024, 7, 6, 14, 0)
    assert "We open again Monday at 08:00" in CLINIC.follow_up_text(when)
    assert promised_by(CLINIC, when).astimezone(LONDON).strftime("%A %H:%M") == "Monday 10:00"


def test_without_opening_hours_nothing_has_a_deadline():
    assert promised_by(Clinic(name="x", phone="1", booking_url="https://x.example"), london(2024, 7, 1, 10)) is None


def test_a_wait_past_the_deadline_is_overdue():
    consent = london(2024, 7, 1, 10, 0)
    wait = wait_of(CLINIC, london(2024, 7, 1, 12, 1), created_at=consent, consent_given=True, consent_at=consent)

    assert wait.promised and wait.overdue
    assert wait.waited == timedelta(hours=2, minutes=1)
    assert describe(wait) == "2 h 01 min"


def test_a_wait_within_the_deadline_is_not_overdue():
    consent = london(2024, 7, 1, 10, 0)
    wait = wait_of(CLINIC, london(2024, 7, 1, 11, 59), created_at=consent, consent_given=True, consent_at=consent)

    assert not wait.overdue and describe(wait) == "1 h 59 min"


def test_a_weekend_wait_is_not_overdue_before_monday_morning():
    consent = london(2024, 7, 6, 14, 0)
    monday_morning = london(2024, 7, 8, 9, 59)

    wait = wait_of(CLINIC, monday_morning, created_at=consent, consent_given=True, consent_at=consent)

    assert not wait.overdue
    assert describe(wait) == "1 d 19 h"
    assert wait_of(CLINIC, london(2024, 7, 8, 10, 1), created_at=consent, consent_given=True,
                   consent_at=consent).overdue


def test_the_promise_counts_from_consent_not_from_an_earlier_escalation():
    created = london(2024, 7, 1, 9, 0)
    consent = london(2024, 7, 1, 11, 0)
    wait = wait_of(CLINIC, london(2024, 7, 1, 12, 30), created_at=created, consent_given=True, consent_at=consent)

    assert wait.since == consent and not wait.overdue
    assert wait.promised_by == london(2024, 7, 1, 13, 0)


def test_without_consent_nothing_was_promised_and_nothing_is_overdue():
    created = london(2024, 7, 1, 9, 0)
    wait = wait_of(CLINIC, london(2024, 7, 3, 9, 0), created_at=created, consent_given=None, consent_at=None)

    assert not wait.promised and not wait.overdue
    assert wait.since == created and wait.waited == timedelta(days=2)


@pytest.mark.parametrize("outcome", ["called_back", "booked", "referred_gp"])
def test_an_outcome_that_reached_the_patient_ends_the_wait(outcome):
    consent = london(2024, 7, 1, 10, 0)
    reached = london(2024, 7, 1, 11, 0)
    wait = wait_of(CLINIC, london(2024, 7, 2, 10, 0), created_at=consent, consent_given=True, consent_at=consent,
                   outcome=outcome, outcome_at=reached)

    assert wait.ended_at == reached and wait.waited == timedelta(hours=1) and not wait.overdue


def test_no_answer_does_not_end_the_wait():
    consent = london(2024, 7, 1, 10, 0)
    wait = wait_of(CLINIC, london(2024, 7, 1, 13, 0), created_at=consent, consent_given=True, consent_at=consent,
                   outcome="no_answer", outcome_at=london(2024, 7, 1, 11, 0))

    assert wait.ended_at is None and wait.overdue


def test_a_case_resolved_late_stays_marked_overdue():
    consent = london(2024, 7, 1, 10, 0)
    wait = wait_of(CLINIC, london(2024, 7, 9, 10, 0), created_at=consent, consent_given=True, consent_at=consent,
                   resolved_at=london(2024, 7, 1, 15, 0))

    assert wait.ended_at == london(2024, 7, 1, 15, 0) and wait.overdue
    assert wait.to_dict()["waited_seconds"] == 5 * 3600


def test_to_dict_gives_iso_times_in_utc_offsets():
    consent = datetime(2024, 7, 1, 9, 0, tzinfo=timezone.utc)
    data = wait_of(CLINIC, consent, created_at=consent, consent_given=True, consent_at=consent).to_dict()

    assert data == {
        "since": "2024-07-01T09:00:00+00:00", "promised_by": "2024-07-01T11:00:00+00:00", "ended_at": None,
        "waited_seconds": 0, "overdue": False,
    }
