"""Splitting replies into text-message parts: at sentence boundaries, at most 320 characters, marked."""

from __future__ import annotations

import random

from bot.assistant.messaging.chunks import sentences, split_message
from bot.core.knowledge import catalog


def test_a_short_reply_is_one_part_without_a_marker():
    assert split_message("Dry needling is safe for most people. Ask us anything.") == [
        "Dry needling is safe for most people. Ask us anything."
    ]


def test_parts_are_cut_between_sentences_and_marked_in_order():
    text = " ".join(f"This is sentence {i}, which says a little about needling." for i in range(20))
    parts = split_message(text, 320)
    total = len(parts)
    assert total > 1
    for index, part in enumerate(parts, start=1):
        assert part.startswith(f"({index}/{total}) ")
        assert len(part) <= 320
        assert part.endswith(".")
    assert " ".join(part.split(" ", 1)[1] for part in parts) == text


def test_a_sentence_longer_than_a_part_is_cut_between_words():
    text = "word " * 200
    parts = split_message(text.strip(), 100)
    assert all(len(part) <= 100 for part in parts)
    assert " ".join(part.split(" ", 1)[1] for part in parts) == text.strip()


def test_a_huge_word_is_cut_hard_rather_than_lost():
    link = "https://example.org/" + "a" * 700
    parts = split_message(link, 320)
    assert "".join(part.split(" ", 1)[1] for part in parts) == link


def test_the_choices_line_stays_whole_in_the_last_part():
    text = " ".join(f"Sentence {i} is here to fill the message up." for i in range(12))
    line = 'Reply 1 for "Yes, please" or 2 for "No, thanks".'
    parts = split_message(text, 320, keep_whole=line)
    assert parts[-1].endswith(line)
    assert all(line not in part for part in parts[:-1])


def test_the_longest_curated_answer_fits_in_marked_parts():
    answers = [answer.text for answer in catalog.load().faq.values()]
    longest = max(answers, key=len)
    parts = split_message(longest, 320)
    assert len(longest) > 320 and len(parts) >= 2
    assert all(len(part) <= 320 for part in parts)
    assert " ".join(part.split(" ", 1)[1] for part in parts) == " ".join(longest.split())


def test_sentences_end_at_full_stops_questions_and_paragraphs():
    assert sentences('Is it safe? Yes. "Mostly." Then\n\nanother one') == [
        "Is it safe?", "Yes.", '"Mostly."', "Then", "another one"
    ]


ALPHABET = "abcdefgh .,!?\n\"')é—😀" + "x" * 10


def random_texts(count: int = 300):
    rng = random.Random(15)
    for _ in range(count):
        yield "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 3000))), rng.randint(60, 400)


def test_no_part_is_ever_longer_than_the_limit_and_no_character_is_lost():
    for text, limit in random_texts():
        parts = split_message(text, limit)
        assert all(len(part) <= limit for part in parts)
        bodies = [part.split(" ", 1)[1] for part in parts] if len(parts) > 1 else parts
        assert "".join(bodies).replace(" ", "") == "".join(text.split())
