"""Checking the contact details a patient gives in the contact form."""

from __future__ import annotations

import pytest

from bot.core.escalation.contact import clean_email, clean_name, clean_phone, normalise_method


@pytest.mark.parametrize(
    "text, method",
    [
        ("Phone call or text", "phone"),
        ("phone", "phone"),
        ("Text me", "phone"),
        ("  WhatsApp  ", "phone"),
        ("email", "email"),
        ("E-mail please", "email"),
        ("EMAIL", "email"),
        ("chat", "chat"),
        ("reply here", "chat"),
        ("Reply in this chat", "chat"),
    ],
)
def test_normalise_method_maps_what_the_patient_chose(text, method):
    assert normalise_method(text) == method


@pytest.mark.parametrize("text", ["", "carrier pigeon", "telephonically?!", "voicemail"])
def test_normalise_method_returns_none_for_anything_else(text):
    assert normalise_method(text) is None


@pytest.mark.parametrize(
    "text, name",
    [
        ("Ana", "Ana"),
        ("my name is Ana", "Ana"),
        ("My name is Ana.", "Ana"),
        ("I'm Ana", "Ana"),
        ("O'Neil", "O'Neil"),
        ("Jean-Luc", "Jean-Luc"),
        ("Mary  Ann   Smith", "Mary Ann Smith"),
        ("José María", "José María"),
        ("Dr. Smith", "Dr. Smith"),
    ],
)
def test_clean_name_accepts_plausible_names(text, name):
    assert clean_name(text) == name


@pytest.mark.parametrize(
    "text",
    ["", "   ", "Ana3", "R2D2", "<script>", "<script>alert(1)</script>", "ana@example.com", "a" * 81, "-Ana"],
)
def test_clean_name_rejects_digits_markup_and_non_names(text):
    assert clean_name(text) is None


@pytest.mark.parametrize("text", ["my name is", "My name is.", "I am", "call me"])
def test_clean_name_rejects_an_introduction_without_a_name(text):
    assert clean_name(text) is None


@pytest.mark.parametrize(
    "text, e164",
    [
        ("020 7946 0958", "+442079460958"),
        ("02079460958", "+442079460958"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("07911 123456", "+447911123456"),
        ("+1 212 555 0100", "+12125550100"),
    ],
)
def test_clean_phone_returns_valid_numbers_in_e164(text, e164):
    assert clean_phone(text, "GB") == e164


@pytest.mark.parametrize("text", ["", "12345", "999", "020 7946", "020 7946 095", "0207946095812", "not a number"])
def test_clean_phone_rejects_invalid_numbers(text):
    assert clean_phone(text, "GB") is None


def test_clean_phone_reads_national_numbers_in_the_clinics_region():
    assert clean_phone("(212) 555-0100", "US") == "+12125550100"
    assert clean_phone("(212) 555-0100", "GB") is None


@pytest.mark.parametrize(
    "text, email",
    [
        ("ana@example.com", "ana@example.com"),
        ("  ana@example.com ", "ana@example.com"),
        ("Ana@Example.COM", "Ana@example.com"),
    ],
)
def test_clean_email_accepts_and_normalises_valid_addresses(text, email):
    assert clean_email(text) == email


@pytest.mark.parametrize("text", ["", "not-an-email", "ana@", "@example.com", "a b@example.com", "ana@@example.com"])
def test_clean_email_rejects_invalid_addresses(text):
    assert clean_email(text) is None
