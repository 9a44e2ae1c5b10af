"""The log filter that keeps patient data out of every log line."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from bot.core import privacy
from bot.core.privacy import REDACTED, PrivacyFilter, mark_sensitive, redact


@pytest.fixture
def log() -> tuple[logging.Logger, io.StringIO]:
    """A logger whose only handler writes to a string, with the privacy filter on it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PrivacyFilter())
    logger = logging.getLogger(f"test.privacy.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, stream


@pytest.mark.parametrize(
    "phone",
    ["+44 7700 900123", "07700900123", "(555) 123-4567", "555.123.4567", "+1-202-555-0147", "0049 30 1234567"],
)
def test_phone_numbers_in_any_notation_are_redacted(phone):
    assert redact(f"call me on {phone} please") == f"call me on {REDACTED} please"


@pytest.mark.parametrize(
    "text",
    [
        "listening on 127.0.0.1:5005",
        "model 20241203-090000-customer-cylinder.tar.gz",
        "confidence 0.98765432",
        "host 192.168.100.200",
        "at 2024-05-01 12:00:00",
        "pid 4242",
        "escalation 774bb550-717c-4bda-9123-4567890dc654 created",
        "id 88f44130-3bb0-4aeb-8a53-1234567890ab",
        "digest 3f9a0123456789b",
    ],
)
def test_addresses_decimals_dates_and_ids_are_not_taken_for_phone_numbers(text):
    assert redact(text) == text


def test_email_addresses_are_redacted():
    assert redact("from jane.doe+clinic@example.co.uk today") == f"from {REDACTED} today"


def test_sql_parameter_blocks_are_redacted_even_across_lines():
    error = (
        "(sqlite3.OperationalError) database is locked\n[SQL: INSERT INTO escalation (name) VALUES (?)]\n"
        "[parameters: ('Maria Lopez', 'line one]\nline two')]\n"
        "(Background on this error at: https://sqlalche.me/e/14/e3q8)"
    )

    redacted = redact(error)

    assert "Maria" not in redacted and "line two" not in redacted
    assert "[SQL: INSERT INTO escalation (name) VALUES (?)]" in redacted
    assert "(Background on this error" in redacted


def test_database_detail_lines_are_redacted():
    assert "maria" not in redact('duplicate key\nDETAIL:  Key (name)=(maria) already exists.\nmore')


async def test_marked_values_are_redacted_only_in_their_own_context(log):
    logger, stream = log

    async def patient(text: str) -> None:
        mark_sensitive(text)
        await asyncio.sleep(0)
        logger.info("processing %r", text)

    async def other() -> None:
        await asyncio.sleep(0)
        logger.info("unrelated: my knee hurts a lot")

    await asyncio.gather(patient("my knee hurts a lot"), other())

    lines = stream.getvalue().splitlines()
    assert f"processing '{REDACTED}'" in lines
    assert "unrelated: my knee hurts a lot" in lines


async def test_marked_values_are_found_inside_nested_structures_and_escaped_forms(log):
    logger, stream = log
    mark_sensitive({"slots": {"name": "Zoë O'Brien", "route": "phone"}, "events": [{"text": 'said "ouch" twice'}]})

    logger.info("slots %s", {"name": "Zoë O'Brien"})
    logger.info('json {"text": "said \\"ouch\\" twice", "name": "Zo\\u00eb O\'Brien"}')

    output = stream.getvalue()
    assert "Brien" not in output and "ouch" not in output
    assert "route" not in output or "phone" in output  # short values ("phone") are left alone


async def test_short_values_are_not_marked():
    mark_sensitive("yes", "no", None, 42)

    assert privacy.sensitive_values() == ()


def test_arguments_are_rendered_then_cleared(log):
    logger, stream = log

    logger.info("contact %s at %s", "Jane", "jane@example.org")

    assert stream.getvalue().strip() == f"contact Jane at {REDACTED}"


def test_exception_text_is_rendered_and_redacted(log):
    logger, stream = log
    try:
        raise ValueError("bad contact +44 7700 900123")
    except ValueError:
        logger.exception("saving failed")

    output = stream.getvalue()
    assert "saving failed" in output and "ValueError" in output
    assert "7700" not in output


def test_a_malformed_format_string_is_still_logged_and_redacted(log):
    logger, stream = log

    logger.info("broken %d", "07700 900123")

    assert "900123" not in stream.getvalue()
    assert "broken" in stream.getvalue()


def test_install_reaches_root_and_library_handlers_once():
    root_handler = logging.StreamHandler(io.StringIO())
    library_handler = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(root_handler)
    logging.getLogger("test.privacy.library").addHandler(library_handler)
    try:
        privacy.install()
        privacy.install()

        for handler in (root_handler, library_handler):
            assert sum(isinstance(f, PrivacyFilter) for f in handler.filters) == 1
    finally:
        logging.getLogger().removeHandler(root_handler)
        logging.getLogger("test.privacy.library").removeHandler(library_handler)
