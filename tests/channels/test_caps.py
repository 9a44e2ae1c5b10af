"""Metadata size caps shared by both channels."""

from __future__ import annotations

import json

import pytest

from bot.assistant.channels.caps import MAX_METADATA_BYTES, parse_metadata


def test_object_and_json_string_metadata_are_accepted():
    assert parse_metadata({"customData": {"language": "en"}}) == {"customData": {"language": "en"}}
    assert parse_metadata('{"customData": {"language": "en"}}') == {"customData": {"language": "en"}}


@pytest.mark.parametrize("raw", [None, "", "not json", "[1, 2]", 42, ["a"], b"\xff\xfe"])
def test_absent_or_malformed_metadata_becomes_empty(raw):
    assert parse_metadata(raw) == {}


def test_oversized_metadata_is_reported_as_none():
    big = {"blob": "x" * MAX_METADATA_BYTES}
    assert parse_metadata(big) is None
    assert parse_metadata(json.dumps(big)) is None


def test_size_counts_bytes_not_characters():
    emoji = {"note": "😀" * (MAX_METADATA_BYTES // 4)}
    assert parse_metadata(emoji) is None
