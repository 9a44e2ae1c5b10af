"""The clinic's facts: loading clinic.yml, opening hours and the follow-up estimate."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.clinic import Clinic, ClinicConfigError, load_clinic
from bot.settings import REPO_ROOT

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
    assert clinic().hours_text() == "Monday–Thursday 08:00–19:00; Friday 08:00–17:00; Saturday 09:00–13:00"


def test_hours_text_does_not_group_days_separated_by_a_closed_day():
    hours = {"mon": ["09:00", "17:00"], "wed": ["09:00", "17:00"]}

    assert clinic(opening_hours=hours).hours_text() == "Monday 09:00–17:00; Wednesday 09:00–17:00"


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


def test_follow_up_text_before_opening_says_later_today():
    assert clinic().follow_up_text(london(2024, 3, 4, 7, 15)) == (
        "The clinic is closed right now. We open again today at 08:00, "
        "and a member of the team will contact you after that."
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
    # Saturday 30 March 2024 15:00 GMT; clocks go forward on Sunday; Monday opens at 08:00 BST.
    assert "We open again Monday at 08:00" in clinic().follow_up_text(london(2024, 3, 30, 15, 0))


def test_follow_up_text_without_opening_hours_gives_the_phone_number():
    text = clinic(opening_hours={}).follow_up_text(london(2024, 3, 4, 10, 0))

    assert text == "The clinic is closed at the moment; please call 020 7946 0958 if you have not heard from us."


def test_is_open_excludes_the_closing_time():
    assert clinic().is_open(london(2024, 3, 4, 18, 59)) is True
    assert clinic().is_open(london(2024, 3, 4, 19, 0)) is False


def test_template_values_fall_back_to_calling_for_prices():
    assert clinic(price_info="").template_values()["price_info"] == "Please call 020 7946 0958 for current prices."
