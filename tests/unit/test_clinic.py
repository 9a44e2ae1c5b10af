"""The clinic's facts: loading clinic.yml, opening hours and the follow-up estimate."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.core.clinic import Clinic, ClinicConfigError, load_clinic
from bot.core.settings import REPO_ROOT

LONDON = ZoneInfo("Europe/London")
VALID = {
    "name": "Riverside Physiotherapy",
    "phone": "020 7946 0958",
    "booking_url": "https://clinic.example/book",
    "timezone": "Europe/London",
    "opening_hours": {
        "mon": ["08:00", "19:00"],
        "tue": ["08:00", "19:00"],
        "wed": ["08:00", "19:00"],
        "thu": ["08:00", "19:00"],
        "fri": ["08:00", "17:00"],
        "sat": ["09:00", "13:00"],
    },
    "follow_up_within_hours": 2,
}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "clinic.yml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def clinic(**changes) -> Clinic:
    return Clinic(**{**VALID, **changes})


def test_load_clinic_reads_a_valid_file(tmp_path):
    loaded = load_clinic(write(tmp_path, VALID))

    assert loaded == clinic()


def test_the_shipped_clinic_file_loads():
    assert load_clinic(REPO_ROOT / "clinic.yml").phone


@pytest.mark.parametrize("field", ["name", "phone", "booking_url"])
def test_load_clinic_rejects_a_missing_required_field(tmp_path, field):
    data = {k: v for k, v in VALID.items() if k != field}

    with pytest.raises(ClinicConfigError, match=f"missing {field}"):
        load_clinic(write(tmp_path, data))


def test_load_clinic_rejects_an_empty_required_field(tmp_path):
    with pytest.raises(ClinicConfigError, match="missing phone"):
        load_clinic(write(tmp_path, {**VALID, "phone": ""}))


def test_load_clinic_rejects_unknown_fields(tmp_path):
    with pytest.raises(ClinicConfigError, match="unknown field.*opening_hour\\b"):
        load_clinic(write(tmp_path, {**VALID, "opening_hour": {}}))


def test_load_clinic_rejects_a_missing_file(tmp_path):
    with pytest.raises(ClinicConfigError, match="cannot read"):
        load_clinic(tmp_path / "absent.yml")


def test_load_clinic_rejects_a_file_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ClinicConfigError, match="mapping"):
        load_clinic(write(tmp_path, "- just\n- a list\n"))


@pytest.mark.parametrize(
    "hours",
    [
        {"mon": ["19:00", "08:00"]},
        {"mon": ["08:00", "08:00"]},
        {"mon": ["08:00", "25:00"]},
        {"mon": ["8am", "5pm"]},
        {"mon": ["08:00"]},
        {"funday": ["08:00", "17:00"]},
    ],
)
def test_load_clinic_rejects_bad_opening_hours(tmp_path, hours):
    with pytest.raises(ClinicConfigError):
        load_clinic(write(tmp_path, {**VALID, "opening_hours": hours}))


def test_load_clinic_rejects_opening_hours_written_as_yaml_numbers(tmp_path):
    # Unquoted 9:00 is a YAML 1.1 base-60 integer (540), a likely slip in a hand-edited file.
    without_hours = {k: v for k, v in VALID.items() if k != "opening_hours"}
    text = yaml.safe_dump(without_hours) + "opening_hours:\n  sat: [9:00, 13:00]\n"

    with pytest.raises(ClinicConfigError):
        load_clinic(write(tmp_path, text))


def test_load_clinic_rejects_an_unknown_time_zone(tmp_path):
    with pytest.raises(ClinicConfigError):
        load_clinic(write(tmp_path, {**VALID, "timezone": "Europe/Atlantis"}))


def test_hours_text_groups_consecutive_days_with_the_same_hours():
    assert clinic().hours_text() == (
        "Monday–Thursday 08:00–19:00; Friday 08:00–17:00; Saturday 09:00–13:00; closed on bank holidays"
    )


def test_hours_text_does_not_group_days_separated_by_a_closed_day():
    hours = {"mon": ["09:00", "17:00"], "wed": ["09:00", "17:00"]}

    assert clinic(opening_hours=hours, bank_holidays="none").hours_text() == (
        "Monday 09:00–17:00; Wednesday 09:00–17:00"
    )


def test_hours_text_without_hours_asks_patients_to_call():
    assert clinic(opening_hours={}).hours_text() == "please call us for our opening hours"


def london(*args) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def test_follow_up_text_when_open_promises_contact_within_the_configured_hours():
    # Monday 4 March 2024, 10:00
    assert clinic().follow_up_text(london(2024, 3, 4, 10, 0)) == (
        "We're open now, so a member of the team aims to contact you within about 2 hours."
    )


def test_follow_up_text_says_one_hour_in_the_singular():
    assert "within about 1 hour." in clinic(follow_up_within_hours=1).follow_up_text(london(2024, 3, 4, 10, 0))


def test_follow_up_text_before_opening_says_when_staff_see_it_and_where_to_get_help_meanwhile():
    assert clinic().follow_up_text(london(2024, 3, 4, 7, 15)) == (
        "The clinic is closed right now. We open again today at 08:00, when the team will see your "
        "message, and a member of the team aims to contact you by 10:00 that day. If you need medical "
        "advice before then, contact NHS 111 (call 111 or go to 111.nhs.uk); in an emergency call "
        "your local emergency number (999 in the UK, 911 in the US, 112 in the EU)."
    )


def test_follow_up_text_after_closing_says_tomorrow():
    assert "We open again tomorrow at 08:00" in clinic().follow_up_text(london(2024, 3, 4, 19, 0))


def test_follow_up_text_on_friday_evening_says_saturday_hours_tomorrow():
    assert "We open again tomorrow at 09:00" in clinic().follow_up_text(london(2024, 3, 8, 18, 30))


def test_follow_up_text_over_the_weekend_names_monday():
    # Saturday 9 March 2024 after 13:00; closed on Sunday.
    assert "We open again Monday at 08:00" in clinic().follow_up_text(london(2024, 3, 9, 14, 0))


def test_follow_up_text_on_sunday_says_tomorrow():
    assert "We open again tomorrow at 08:00" in clinic().follow_up_text(london(2024, 3, 10, 12, 0))


def test_follow_up_text_converts_other_time_zones_to_the_clinics():
    # 07:30 UTC on 1 July 2024 is 08:30 in London (BST): open.
    assert clinic().follow_up_text(datetime(2024, 7, 1, 7, 30, tzinfo=timezone.utc)).startswith("We're open now")


def test_follow_up_text_gives_the_local_opening_time_across_a_dst_change():
    # Saturday 30 March 2024 15:00 GMT; clocks go forward on Sunday; Monday 1 April is Easter
    # Monday, so the clinic opens on Tuesday at 08:00 BST and replies by 10:00 BST.
    text = clinic().follow_up_text(london(2024, 3, 30, 15, 0))

    assert "We open again Tuesday at 08:00" in text and "by 10:00 that day" in text


def test_follow_up_text_without_opening_hours_gives_the_phone_number():
    text = clinic(opening_hours={}).follow_up_text(london(2024, 3, 4, 10, 0))

    assert text == "The clinic is closed at the moment; please call 020 7946 0958 if you have not heard from us."


def test_is_open_excludes_the_closing_time():
    assert clinic().is_open(london(2024, 3, 4, 18, 59)) is True
    assert clinic().is_open(london(2024, 3, 4, 19, 0)) is False


def test_template_values_fall_back_to_calling_for_prices():
    assert clinic(price_info="").template_values()["price_info"] == "Please call 020 7946 0958 for current prices."


# The follow-up promise on a table of date-times. The clinic: Monday–Thursday 08:00–19:00,
# Friday 08:00–17:00, Saturday 09:00–13:00, England and Wales bank holidays, a closure on
# 24 December 2026 and from 29 to 31 December 2026; contact within 2 open hours.
# 2026-12-25 (Fri) Christmas Day, 26 (Sat) Boxing Day, 28 (Mon) Boxing Day observed;
# 2027-03-29 Easter Monday; 2026-12-04 is a Friday.
HOLIDAY_CLINIC = {"emergency_number": "999", "closures": ["2026-12-24", {"from": "2026-12-29", "to": "2026-12-31"}]}
PROMISES = [
    # (moment in London, open?, the sentence's start, the deadline the sentence names, deadline)
    ((2026, 12, 4, 10, 0), True, "We're open now", "within about 2 hours", (2026, 12, 4, 12, 0)),
    ((2026, 12, 4, 14, 59), True, "We're open now", "within about 2 hours", (2026, 12, 4, 16, 59)),
    ((2026, 12, 4, 15, 1), True, "We close at 17:00 today", "by 09:01 tomorrow", (2026, 12, 5, 9, 1)),
    ((2026, 12, 4, 16, 50), True, "We close at 17:00 today", "by 10:50 tomorrow", (2026, 12, 5, 10, 50)),
    ((2026, 12, 4, 17, 0), False, "The clinic is closed right now. We open again tomorrow at 09:00",
     "by 11:00 that day", (2026, 12, 5, 11, 0)),
    ((2026, 12, 5, 12, 30), True, "We close at 13:00 today", "by 09:30 on Monday", (2026, 12, 7, 9, 30)),
    ((2026, 12, 6, 12, 0), False, "The clinic is closed right now. We open again tomorrow at 08:00",
     "by 10:00 that day", (2026, 12, 7, 10, 0)),
    ((2026, 12, 23, 18, 30), True, "We close at 19:00 today", "by 10:30 on Saturday 2 January",
     (2027, 1, 2, 10, 30)),
    ((2026, 12, 24, 10, 0), False, "The clinic is closed today. We open again Saturday 2 January at 09:00",
     "by 11:00 that day", (2027, 1, 2, 11, 0)),
    ((2026, 12, 25, 10, 0), False, "The clinic is closed today for the bank holiday. We open again "
     "Saturday 2 January at 09:00", "by 11:00 that day", (2027, 1, 2, 11, 0)),
    ((2026, 12, 26, 10, 0), False, "The clinic is closed today for the bank holiday.", "by 11:00 that day",
     (2027, 1, 2, 11, 0)),
    ((2026, 12, 28, 9, 0), False, "The clinic is closed today for the bank holiday. We open again Saturday at 09:00",
     "by 11:00 that day", (2027, 1, 2, 11, 0)),
    ((2027, 1, 1, 12, 0), False, "The clinic is closed today for the bank holiday. We open again tomorrow at 09:00",
     "by 11:00 that day", (2027, 1, 2, 11, 0)),
    ((2027, 3, 26, 10, 0), False, "The clinic is closed today for the bank holiday. We open again tomorrow at 09:00",
     "by 11:00 that day", (2027, 3, 27, 11, 0)),
    ((2027, 3, 27, 12, 0), True, "We close at 13:00 today", "by 09:00 on Tuesday", (2027, 3, 30, 9, 0)),
    ((2027, 3, 29, 10, 0), False, "The clinic is closed today for the bank holiday. We open again tomorrow at 08:00",
     "by 10:00 that day", (2027, 3, 30, 10, 0)),
]


@pytest.mark.parametrize("moment, open_now, start, promise, deadline", PROMISES, ids=[str(p[0]) for p in PROMISES])
def test_the_follow_up_promise_holds_in_open_hours(moment, open_now, start, promise, deadline):
    holiday_clinic = clinic(**HOLIDAY_CLINIC)
    when = london(*moment)
    text = holiday_clinic.follow_up_text(when)

    assert holiday_clinic.is_open(when) is open_now
    assert text.startswith(start), text
    assert promise in text, text
    assert holiday_clinic.reply_by(when) == london(*deadline)
    if not text.startswith("We're open now"):
        assert "NHS 111" in text and "call 999" in text, text


@pytest.mark.parametrize("day", [(2026, 12, 25), (2026, 12, 26), (2026, 12, 28), (2027, 3, 29), (2026, 8, 31)])
def test_never_open_on_a_bank_holiday(day):
    for hour in range(24):
        when = london(*day, hour, 30)
        assert not clinic().is_open(when)
        assert not clinic().follow_up_text(when).startswith("We're open now")


def test_the_bank_holiday_region_is_configurable():
    # 2 January 2027 is a bank holiday in Scotland only; 2 January 2026 (Friday) likewise.
    friday = london(2026, 1, 2, 10, 0)

    assert clinic().is_open(friday)
    assert not clinic(bank_holidays="GB-SCT").is_open(friday)
    assert clinic(bank_holidays="none").is_open(london(2026, 12, 28, 10, 0))


def test_a_closure_range_includes_both_ends():
    shut = clinic(closures=[{"from": "2026-12-29", "to": "2026-12-31", "reason": "training"}])

    assert [shut.is_open(london(2026, 12, day, 10, 0)) for day in (28, 29, 30, 31)] == [False, False, False, False]
    assert shut.is_closure(date(2026, 12, 29)) and not shut.is_closure(date(2027, 1, 1))
    assert shut.next_opening(london(2026, 12, 29, 10, 0)) == london(2027, 1, 2, 9, 0)


def test_the_shipped_clinic_file_observes_england_and_wales_bank_holidays():
    shipped = load_clinic(REPO_ROOT / "clinic.yml")

    assert shipped.is_bank_holiday(date(2026, 12, 25)) and not shipped.is_open(london(2026, 12, 25, 10, 0))
    assert "NHS 111" in shipped.follow_up_text(london(2026, 12, 25, 10, 0))


@pytest.mark.parametrize(
    "closures",
    [["24/12/2026"], [{"from": "2026-12-31", "to": "2026-12-29"}], [{"to": "2026-12-29"}],
     [{"from": "2026-12-29", "until": "2026-12-31"}], "2026-12-24"],
)
def test_load_clinic_rejects_bad_closures(tmp_path, closures):
    with pytest.raises(ClinicConfigError, match="closure"):
        load_clinic(write(tmp_path, {**VALID, "closures": closures}))


def test_load_clinic_reads_closures_written_as_yaml_dates(tmp_path):
    text = yaml.safe_dump(VALID) + "closures:\n  - 2026-12-24\n  - {from: 2026-12-29, to: 2026-12-31}\n"

    loaded = load_clinic(write(tmp_path, text))

    assert loaded.is_closure(date(2026, 12, 24)) and loaded.is_closure(date(2026, 12, 30))


@pytest.mark.parametrize("region", ["GB-XX", "ZZ"])
def test_load_clinic_rejects_an_unknown_bank_holiday_region(tmp_path, region):
    with pytest.raises(ClinicConfigError, match="bank_holidays"):
        load_clinic(write(tmp_path, {**VALID, "bank_holidays": region}))
