"""The circuit breaker's states, on a clock the test moves."""

from __future__ import annotations

import pytest

from qqavatar.avatars.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(threshold: int = 3, cooldown: float = 10) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(threshold, cooldown, clock=clock), clock


def test_opens_after_threshold_different_keys_fail_in_a_row() -> None:
    b, _ = breaker()
    for key in ("a", "b"):
        assert b.allow()
        b.failure(key)
    assert b.state == "closed"
    b.failure("c")
    assert b.state == "open"
    assert not b.allow()
    assert b.opened == 1


def test_one_key_failing_again_and_again_does_not_open_it() -> None:
    b, _ = breaker()
    for _ in range(10):
        b.failure("same")
    assert b.state == "closed" and b.allow()


def test_a_success_ends_the_streak() -> None:
    b, _ = breaker()
    b.failure("a")
    b.failure("b")
    b.success()
    b.failure("c")
    b.failure("d")
    assert b.state == "closed"


def test_half_open_after_the_cooldown_lets_one_probe_through() -> None:
    b, clock = breaker(cooldown=10)
    for key in "abc":
        b.failure(key)
    clock.now += 9.9
    assert b.state == "open" and not b.allow()
    assert b.retry_after == pytest.approx(0.1)
    clock.now += 0.1
    assert b.state == "half-open"
    assert b.allow()        # the probe
    assert not b.allow()    # everyone else still fails fast
    assert b.state == "half-open"


def test_a_successful_probe_closes_it() -> None:
    b, clock = breaker()
    for key in "abc":
        b.failure(key)
    clock.now += 10
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow() and b.allow()
    assert b.retry_after == 0


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    b, clock = breaker()
    for key in "abc":
        b.failure(key)
    clock.now += 10
    assert b.allow()
    b.failure("d")
    assert b.state == "open" and not b.allow()
    assert b.retry_after == 10
    assert b.opened == 2


def test_an_abandoned_probe_lets_the_next_one_go() -> None:
    b, clock = breaker()
    for key in "abc":
        b.failure(key)
    clock.now += 10
    assert b.allow()
    b.abandon()
    assert b.allow()


def test_a_late_failure_while_open_does_not_extend_the_cooldown() -> None:
    b, clock = breaker()
    for key in "abc":
        b.failure(key)
    clock.now += 5
    b.failure("started before it opened")
    assert b.retry_after == 5


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1)
