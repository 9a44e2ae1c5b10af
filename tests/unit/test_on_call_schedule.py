"""The on-call schedule (bot/core/escalation/on_call.py) and the ``on_call`` section of clinic.yml.

Who is alerted when is a pure function of the plan, the case's age, the rounds already sent
and a clock: the tests walk a fake clock through a case nobody opens.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.core.clinic import ClinicConfigError, OnCall, OnCallContact, load_clinic, parse_on_call
from bot.core.escalation.on_call import case_url, recipients, round_due, sms_text

T0 = datetime(2026, 12, 5, 23, 0, tzinfo=timezone.utc)
A = OnCallContact("Duty physio", phone="+447700900123")
B = OnCallContact("Clinic lead", email="lead@clinic.example")
C = OnCallContact("Owner", phone="+447700900789", email="owner@clinic.example")
PLAN = OnCall((A, B, C), realert_minutes=10)


def walk(plan: OnCall, minutes: int, step: int = 1) -> list[tuple[int, int, tuple[str, ...]]]:
    """(minute, round, names) of every round sent for a case created at T0 that nobody opens."""
    sent, last = [], None
    for minute in range(0, minutes + 1, step):
        now = T0 + timedelta(minutes=minute)
        number = round_due(plan, T0, len(sent), last, now)
        if number is not None:
            sent.append((minute, number, tuple(c.name for c in recipients(plan, number))))
            last = now
    return sent


def test_first_contact_at_once_then_one_wider_every_realert_interval_until_max_rounds():
    assert walk(PLAN, 120) == [
        (0, 0, ("Duty physio",)),
        (10, 1, ("Duty physio", "Clinic lead")),
        (20, 2, ("Duty physio", "Clinic lead", "Owner")),
        (30, 3, ("Duty physio", "Clinic lead", "Owner")),
        (40, 4, ("Duty physio", "Clinic lead", "Owner")),
    ]  # 3 contacts + 2 extra rounds to everyone, then nothing more


def test_no_round_before_the_interval_after_the_last_one():
    assert round_due(PLAN, T0, 1, T0, T0 + timedelta(minutes=9, seconds=59)) is None
    assert round_due(PLAN, T0, 1, T0, T0 + timedelta(minutes=10)) == 1


def test_a_late_notifier_sends_one_round_and_waits_from_it_not_from_the_case():
    """The notifier was down for an hour: one round now, the next 10 minutes later, not a burst."""
    late = T0 + timedelta(minutes=60)
    assert round_due(PLAN, T0, 0, None, late) == 0
    assert round_due(PLAN, T0, 1, late, late) is None
    assert round_due(PLAN, T0, 1, late, late + timedelta(minutes=10)) == 1


def test_configured_interval_and_rounds_are_followed():
    plan = OnCall((A, B), realert_minutes=0.5, max_rounds=2)
    assert walk(plan, 10, step=1) == [(0, 0, ("Duty physio",)), (1, 1, ("Duty physio", "Clinic lead"))]


def test_nobody_on_call_means_no_round():
    assert round_due(OnCall(), T0, 0, None, T0 + timedelta(hours=1)) is None


def test_the_text_holds_the_reference_and_link_only():
    case = "0f1e2d3c-aaaa-bbbb-cccc-000000000000"
    url = case_url("https://assistant.clinic.example/", case)
    assert url == f"https://assistant.clinic.example/staff/escalations/{case}"
    first, again = sms_text("Riverside Physiotherapy", case, url, 0), sms_text("Riverside Physiotherapy", case, url, 2)
    assert "0f1e2d3c" in first and url in first and "reminder" not in first
    assert "reminder" in again
    assert case_url("", case) is None
    assert "dashboard" in sms_text("Riverside Physiotherapy", case, None, 0)


def test_parse_on_call_reads_local_numbers_in_the_clinic_region_and_defaults():
    plan = parse_on_call([{"name": "Duty physio", "phone": "07700 900123"}, {"name": "Lead", "email": "l@c.example"}],
                         "GB")
    assert plan.contacts == (OnCallContact("Duty physio", "+447700900123"), OnCallContact("Lead", "", "l@c.example"))
    assert plan.realert == timedelta(minutes=10)
    assert plan.rounds == 4
    full = parse_on_call({"contacts": [{"name": "X", "phone": "+447700900123"}], "realert_minutes": 3,
                          "max_rounds": 1}, "GB")
    assert (full.realert_minutes, full.rounds) == (3.0, 1)
    assert parse_on_call(None, "GB") == OnCall()


@pytest.mark.parametrize("raw", [
    [{"name": "No channel"}],
    [{"phone": "+447700900123"}],
    [{"name": "X", "phone": "not a number"}],
    [{"name": "X", "email": "nope"}],
    [{"name": "X", "phone": "+447700900123", "pager": "1"}],
    {"contacts": [], "realert_minutes": 0},
    {"contacts": [], "realert_minutes": "soon"},
    {"contacts": [], "max_rounds": -1},
    {"contacts": [], "escalate_to": "everyone"},
    "Duty physio",
])
def test_a_bad_on_call_section_is_refused_when_the_clinic_is_loaded(tmp_path: Path, raw):
    with pytest.raises(ValueError):
        parse_on_call(raw, "GB")
    import yaml

    path = tmp_path / "clinic.yml"
    path.write_text(yaml.safe_dump({"name": "C", "phone": "1", "booking_url": "https://b", "on_call": raw}))
    with pytest.raises(ClinicConfigError):
        load_clinic(path)


def test_the_shipped_clinic_has_nobody_on_call():
    assert load_clinic(Path(__file__).resolve().parents[2] / "clinic.yml").on_call_plan.contacts == ()
