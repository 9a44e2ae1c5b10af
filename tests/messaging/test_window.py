"""WhatsApp's 24-hour window for free text; SMS has none."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.core.messaging.window import free_text_allowed, window_closes_at

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def test_free_text_is_allowed_within_24_hours_of_the_patients_last_message():
    assert free_text_allowed("whatsapp", NOW - timedelta(hours=23, minutes=59), NOW)


def test_free_text_is_refused_after_24_hours_or_before_any_message():
    assert not free_text_allowed("whatsapp", NOW - timedelta(hours=24), NOW)
    assert not free_text_allowed("whatsapp", None, NOW)


def test_sms_has_no_window():
    assert free_text_allowed("sms", NOW - timedelta(days=30), NOW)
    assert window_closes_at("sms", NOW) is None
    assert window_closes_at("whatsapp", NOW) == NOW + timedelta(hours=24)
