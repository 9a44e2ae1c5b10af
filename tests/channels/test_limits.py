"""The in-memory message rate limits: a burst, then a steady rate, in bounded memory."""

from __future__ import annotations

import pytest

from bot.assistant.channels.limits import MessageLimits, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_is_allowed_then_refused():
    limiter = RateLimiter(5, clock=Clock())
    assert [limiter.take("s") for _ in range(6)] == [True] * 5 + [False]


def test_one_more_message_is_allowed_after_its_share_of_the_minute():
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)
    for _ in range(6):
        limiter.take("s")
    clock.now += 9.9
    assert not limiter.take("s")
    clock.now += 0.2
    assert limiter.take("s")
    assert not limiter.take("s")


def test_a_full_minute_restores_the_whole_burst():
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    for _ in range(3):
        limiter.take("s")
    clock.now += 600
    assert [limiter.take("s") for _ in range(4)] == [True, True, True, False]


def test_keys_are_counted_separately():
    limiter = RateLimiter(1, clock=Clock())
    assert limiter.take("a") and limiter.take("b")
    assert not limiter.take("a")


def test_memory_stays_bounded_by_evicting_the_least_recently_used_key():
    limiter = RateLimiter(1, max_keys=100, clock=Clock())
    limiter.take("first")
    for i in range(1000):
        limiter.take(f"sender-{i}")
    assert len(limiter) == 100
    assert limiter.would_allow("first")  # forgotten, so a full bucket again


def test_a_limit_below_one_message_a_minute_is_refused():
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_either_limit_refuses_and_a_refused_message_costs_nothing():
    clock = Clock()
    limits = MessageLimits(per_sender=RateLimiter(2, clock=clock), per_address=RateLimiter(3, clock=clock))
    assert limits.allow("a", "10.0.0.1") and limits.allow("a", "10.0.0.1")
    assert not limits.allow("a", "10.0.0.1")  # sender limit
    assert limits.allow("b", "10.0.0.1")
    assert not limits.allow("c", "10.0.0.1")  # address limit
    assert limits.allow("c", "10.0.0.2")  # 'c' was not charged when refused
