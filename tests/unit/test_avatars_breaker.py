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


def probing() -> CircuitBreaker:
    """A breaker opened by three avatars' host failures, its cool-down over, its probe sent."""
    b, clock = breaker(cooldown=10)
    for key in "abc":
        b.failure(key)
    clock.now += 10
    assert b.allow()
    return b


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


def test_answers_in_the_window_keep_it_closed_below_the_ratio() -> None:
    b, _ = breaker(threshold=4)
    for key in "ab":
        b.success()
        b.success()
        b.failure(key)
    assert b.state == "closed"  # 2 of 6 failed
    b.failure("c")
    assert b.state == "closed"  # 3 of 7: under half
    b.failure("d")
    assert b.state == "open"    # 4 of 8: half of them, the ratio


def test_too_few_requests_do_not_open_it_whatever_the_ratio() -> None:
    b, _ = breaker(threshold=5)
    for key in "abcd":
        b.failure(key)
    assert b.state == "closed"
    b.failure("e")
    assert b.state == "open"


def test_outcomes_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    b = CircuitBreaker(3, 10, clock=clock, window=30)
    b.failure("a")
    b.failure("b")
    clock.now += 31
    b.failure("c")
    assert b.state == "closed"  # a and b are out of the window
    for _ in range(4):
        b.success()
    clock.now += 20
    b.failure("d")
    b.failure("e")
    assert b.state == "closed"  # 3 of 7 within the last 30 s...
    clock.now += 11             # ...c and the four answers (at +31 s) have left it
    b.failure("f")
    assert b.state == "open"    # d, e, f: 3 of 3


def test_bad_answers_about_single_avatars_never_open_it() -> None:
    b, _ = breaker(threshold=3)
    for _ in range(100):
        b.success()  # 404, not an image, too large: the service reports the host as up
    assert b.state == "closed" and b.allow()
    for key in "ab":  # they count as answers: two host failures in 102 are far below half
        b.failure(key)
    assert b.state == "closed"


def test_a_probe_answered_with_a_bad_avatar_closes_it() -> None:
    b = probing()
    b.success()  # the host answered, with a bad avatar (the service reports it so): it is back
    assert b.state == "closed" and b.allow()


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
    b = probing()
    b.success()
    assert b.state == "closed" and b.allow() and b.allow()
    assert b.retry_after == 0


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    b = probing()
    b.failure("d")
    assert b.state == "open" and not b.allow()
    assert b.retry_after == 10
    assert b.opened == 2


def test_an_abandoned_probe_lets_the_next_one_go() -> None:
    b = probing()
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


def test_a_streak_of_host_failures_opens_it_after_many_answers() -> None:
    b, _ = breaker(threshold=3)
    for _ in range(50):
        b.success()
    b.failure("a")
    b.failure("b")
    b.success()  # ends the streak
    b.failure("c")
    b.failure("d")
    assert b.state == "closed"
    b.failure("e")  # c, d, e: three different avatars in a row, the host is down
    assert b.state == "open"
