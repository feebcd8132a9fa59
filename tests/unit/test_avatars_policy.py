"""The freshness and resilience policy of AvatarService, against the fake qlogo with faults.

Stale-while-revalidate, stale-if-error, the negative cache, circuit breakers, upstream
alternates and the HD fallback. The service's clock is moved by the test; the upstream
is a real HTTP server (a child process) whose request counters are the evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from qqavatar.avatars import AvatarService, NoAvatar, UpstreamError
from qqavatar.avatars.failures import Failure
from qqavatar.fakeqlogo import (
    FaultMode,
    RunningFake,
    avatar_bytes,
    penguin_bytes,
    serve_in_thread,
    spawn,
)
from qqavatar.protocol.avatar_errors import FailureAnswer, failure_answer
from tests.unit.avatars_support import Clock, run, until_settled

TTL = 60


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    with spawn() as running:
        yield running


@pytest.fixture(scope="module")
def other_fake() -> Iterator[RunningFake]:
    """A second upstream, to be the broken primary in front of `fake`."""
    with serve_in_thread() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_fakes(fake: RunningFake, other_fake: RunningFake) -> None:
    fake.reset()
    other_fake.reset()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


# --- stale-while-revalidate ------------------------------------------------------------


def test_an_expired_avatar_is_served_stale_at_once_then_revalidated(
        fake: RunningFake, clock: Clock) -> None:
    async def test(svc: AvatarService) -> None:
        first = await svc.fetch("user", "10002", 100)
        assert (first.cache, first.upstream_fetch) == ("MISS", True)
        assert (await svc.fetch("user", "10002", 100)).cache == "HIT"
        clock.advance(TTL)
        fake.fault("change")  # qlogo has a new picture now
        assert svc.cached("user", "10002", 100) is None  # not fresh: the slow path decides
        stale = await svc.fetch("user", "10002", 100)
        assert (stale.cache, stale.upstream_fetch) == ("STALE", True)  # it started the refresh
        assert stale.avatar is first.avatar
        again = await svc.fetch("user", "10002", 100)
        assert (again.cache, again.upstream_fetch) == ("STALE", False)  # one refresh only
        fresh = await until_settled(svc, "user", "10002", 100)
        assert fresh.cache == "REVALIDATED"
        assert fresh.avatar.body == avatar_bytes("user", "10002", 1, 100)
        assert fresh.avatar.etag != first.avatar.etag
        assert fresh.avatar.expires_at == clock.now + TTL
        after = await svc.fetch("user", "10002", 100)
        assert after.cache == "HIT" and after.avatar.body == fresh.avatar.body
        assert svc.cached("user", "10002", 100) is after.avatar

    run(fake, test, ttl=TTL)
    assert fake.count("user", "10002", 100) == 2


def test_a_hanging_refresh_does_not_hold_up_stale_answers(fake: RunningFake, clock: Clock) -> None:
    async def test(svc: AvatarService) -> None:
        await svc.fetch("user", "10003", 40)
        clock.advance(TTL)
        fake.fault("hang")
        for _ in range(20):
            assert (await svc.fetch("user", "10003", 40)).cache == "STALE"
        # Twenty answers before the refresh even reached qlogo: nobody waited for it.
        assert fake.count("user", "10003", 40) == 1
        await asyncio.sleep(0.2)
        assert fake.count("user", "10003", 40) == 2  # ONE refresh, hanging
        assert (await svc.fetch("user", "10003", 40)).cache == "STALE"
        # It times out and is remembered: still stale, still no new attempt.
        await asyncio.sleep(0.5)
        assert (await svc.fetch("user", "10003", 40)).cache == "STALE"

    run(fake, test, ttl=TTL, timeout=0.5)
    assert fake.count("user", "10003", 40) == 2


def test_past_the_stale_window_the_caller_waits_for_the_refresh(
        fake: RunningFake, clock: Clock) -> None:
    async def test(svc: AvatarService) -> None:
        first = await svc.fetch("user", "10004", 100)
        clock.advance(TTL + 30)
        fake.fault("change")
        served = await svc.fetch("user", "10004", 100)
        assert (served.cache, served.upstream_fetch) == ("REVALIDATED", True)
        assert served.avatar.etag != first.avatar.etag
        assert (await svc.fetch("user", "10004", 100)).cache == "HIT"

    run(fake, test, ttl=TTL, stale_ttl=30)


def test_an_unchanged_refresh_keeps_last_modified(fake: RunningFake, clock: Clock) -> None:
    async def test(svc: AvatarService) -> None:
        first = (await svc.fetch("user", "10004", 40)).avatar
        clock.advance(TTL)
        again = (await svc.fetch("user", "10004", 40)).avatar
        assert again is not first and again.etag == first.etag
        assert again.modified_at == first.modified_at

    run(fake, test, ttl=TTL, stale_ttl=0)


# --- stale-if-error --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["error500", "html", "huge", "reset", "drip", "hang"])
def test_a_failing_upstream_is_answered_with_the_previous_copy(
        fake: RunningFake, clock: Clock, mode: FaultMode) -> None:
    async def test(svc: AvatarService) -> None:
        first = await svc.fetch("user", "10005", 100)
        clock.advance(TTL)
        fake.fault(mode)
        served = await svc.fetch("user", "10005", 100)  # no exception: err_code 0
        assert (served.cache, served.upstream_fetch) == ("STALE", True)
        assert served.avatar is first.avatar
        # Remembered: the next callers get the copy without a new attempt.
        assert (await svc.fetch("user", "10005", 100)).cache == "STALE"
        assert fake.count("user", "10005", 100) == 2
        # A copy too old even for that is not served (the failure has been forgotten by
        # then: qlogo is asked once more).
        clock.advance(3600)
        with pytest.raises(UpstreamError):
            await svc.fetch("user", "10005", 100)
        assert fake.count("user", "10005", 100) == 3

    run(fake, test, ttl=TTL, stale_ttl=0, stale_if_error_ttl=3600, timeout=0.4)


# --- the negative cache ------------------------------------------------------------------


def test_a_failure_is_remembered_for_negative_ttl(fake: RunningFake, clock: Clock) -> None:
    fake.fault("error500", numbers=["10006"])

    async def test(svc: AvatarService) -> None:
        with pytest.raises(UpstreamError) as first:
            await svc.fetch("user", "10006", 100)
        assert first.value.failure is Failure.INVALID
        assert (first.value.cache, first.value.upstream_fetch) == ("MISS", True)
        for _ in range(5):
            with pytest.raises(UpstreamError) as again:
                await svc.fetch("user", "10006", 100)
            assert again.value.failure is Failure.INVALID
            assert (again.value.cache, again.value.upstream_fetch) == ("HIT", False)
        assert fake.count("user", "10006", 100) == 1
        assert svc.cached("user", "10006", 100) is None  # a failure is never an avatar
        await svc.fetch("user", "10016", 100)  # other avatars are not affected
        clock.advance(30)
        with pytest.raises(UpstreamError):
            await svc.fetch("user", "10006", 100)
        assert fake.count("user", "10006", 100) == 2
        fake.fault("none", numbers=["10006"])
        clock.advance(30)
        assert (await svc.fetch("user", "10006", 100)).cache == "MISS"

    run(fake, test, negative_ttl=30)


def test_negative_ttl_zero_remembers_nothing(fake: RunningFake) -> None:
    fake.fault("html", numbers=["10007"])

    async def test(svc: AvatarService) -> None:
        for _ in range(3):
            with pytest.raises(UpstreamError):
                await svc.fetch("user", "10007", 100)

    run(fake, test, negative_ttl=0)
    assert fake.count("user", "10007", 100) == 3


# --- circuit breaker ---------------------------------------------------------------------


def test_the_breaker_opens_fails_fast_and_recovers(fake: RunningFake, clock: Clock) -> None:
    fake.fault("error500")

    async def test(svc: AvatarService) -> None:
        for number in ("20001", "20002", "20003"):
            with pytest.raises(UpstreamError) as failed:
                await svc.fetch("user", number, 100)
            assert failed.value.failure is Failure.INVALID
        assert svc.circuit_state == "open"
        with pytest.raises(UpstreamError) as fast:
            await svc.fetch("user", "20004", 100)
        assert failure_answer(fast.value) == FailureAnswer(
            -5, "头像服务暂时不可用，请稍后重试", 503, "upstream failing, circuit open: failing fast")
        assert fast.value.upstream_fetch is False
        assert fake.stats()["requests"] == 3  # failing fast: qlogo was left alone
        # Group avatars have their own upstream and breaker.
        with pytest.raises(UpstreamError) as group:
            await svc.fetch("group", "20005", 100)
        assert group.value.failure is Failure.INVALID

        clock.advance(10)
        assert svc.circuit_state == "half-open"
        with pytest.raises(UpstreamError) as probe:  # the probe fails: open again
            await svc.fetch("user", "20006", 100)
        assert probe.value.failure is Failure.INVALID
        assert svc.circuit_state == "open"

        fake.fault("none")
        clock.advance(10)
        served = await svc.fetch("user", "20007", 100)  # the probe succeeds
        assert served.cache == "MISS"
        assert svc.circuit_state == "closed"
        await svc.fetch("user", "20004", 100)  # not remembered: the breaker spoke, not qlogo

    run(fake, test, negative_ttl=0, circuit_threshold=3, circuit_cooldown=10)


def test_one_broken_avatar_asked_again_and_again_does_not_open_the_breaker(
        fake: RunningFake) -> None:
    fake.fault("reset", numbers=["20011"])

    async def test(svc: AvatarService) -> None:
        for _ in range(6):
            with pytest.raises(UpstreamError) as failed:
                await svc.fetch("user", "20011", 100)
            assert failed.value.failure is Failure.CONNECT
        assert svc.circuit_state == "closed"
        await svc.fetch("user", "20012", 100)

    run(fake, test, negative_ttl=0, circuit_threshold=3)


def test_an_open_breaker_still_serves_stale_copies(fake: RunningFake, clock: Clock) -> None:
    async def test(svc: AvatarService) -> None:
        kept = await svc.fetch("user", "20021", 100)
        fake.fault("error500")
        for number in ("20022", "20023"):
            with pytest.raises(UpstreamError):
                await svc.fetch("user", number, 100)
        assert svc.circuit_state == "open"
        clock.advance(TTL)
        served = await svc.fetch("user", "20021", 100)
        assert (served.cache, served.avatar) == ("STALE", kept.avatar)

    run(fake, test, ttl=TTL, stale_ttl=0, negative_ttl=0, circuit_threshold=2)


# --- upstream alternates -----------------------------------------------------------------


def alternate(fake: RunningFake) -> str:
    return fake.url + "/headimg_dl?dst_uin={qq}&spec={size}"


@pytest.mark.parametrize("mode", ["error500", "html", "reset", "hang"])
def test_a_failing_primary_falls_back_to_the_alternate(
        fake: RunningFake, other_fake: RunningFake, mode: FaultMode) -> None:
    other_fake.fault(mode)
    a = run(fake, lambda s: s.get("user", "10008", 100), user_url=other_fake.user_url,
            user_alternates=[alternate(fake)], timeout=0.5)
    assert a.body == avatar_bytes("user", "10008", 0, 100)
    assert other_fake.count("user", "10008", 100) == 1
    assert fake.count("user", "10008", 100) == 1


def test_alternates_are_tried_in_order_and_the_last_error_is_reported(
        fake: RunningFake, other_fake: RunningFake) -> None:
    other_fake.fault("error500")
    fake.fault("reset")

    async def test(svc: AvatarService) -> None:
        assert svc.urls("user", "10009", 40) == [
            other_fake.user_url.format(qq="10009", size=40),
            alternate(fake).format(qq="10009", size=40)]
        with pytest.raises(UpstreamError) as failed:
            await svc.fetch("user", "10009", 40)
        assert failed.value.failure is Failure.CONNECT  # the alternate's reset, after the 500

    run(fake, test, user_url=other_fake.user_url, user_alternates=[alternate(fake)])
    assert (other_fake.count("user", "10009", 40), fake.count("user", "10009", 40)) == (1, 1)


def test_an_open_primary_is_skipped_straight_to_the_alternate(
        fake: RunningFake, other_fake: RunningFake) -> None:
    other_fake.fault("error500")

    async def test(svc: AvatarService) -> None:
        for number in ("10011", "10012"):
            await svc.fetch("user", number, 40)  # primary fails, alternate answers
        assert other_fake.stats()["requests"] == 2
        assert svc.circuit_state == "closed"  # users still have an upstream that works
        await svc.fetch("user", "10013", 40)
        assert other_fake.stats()["requests"] == 2  # the open primary was not asked
        assert fake.stats()["requests"] == 3

    run(fake, test, user_url=other_fake.user_url, user_alternates=[alternate(fake)],
        circuit_threshold=2)


# --- HD fallback -------------------------------------------------------------------------


def test_640_without_hd_falls_back_to_the_largest_real_avatar(fake: RunningFake) -> None:
    fake.fault("nohd", numbers=["10015"])

    async def test(svc: AvatarService) -> None:
        served = await svc.fetch("user", "10015", 640)
        assert served.avatar.body == avatar_bytes("user", "10015", 0, 140)
        assert (served.avatar.size, served.avatar.is_default) == (140, False)
        assert served.avatar.expires_at <= svc.cached("user", "10015", 140).expires_at  # type: ignore[union-attr]
        assert svc.cached("user", "10015", 640) is served.avatar
        assert svc.cached("user", "10015", 140) is not None  # fetched on the way, kept

    run(fake, test, default_ttl=600)
    assert fake.count("user", "10015", 640) == 1
    assert fake.count("user", "10015", 140) == 1


def test_640_with_hd_is_served_as_640(fake: RunningFake) -> None:
    a = run(fake, lambda s: s.get("group", "10016", 640))
    assert (a.size, a.body) == (640, avatar_bytes("group", "10016", 0, 640))
    assert fake.count("group", "10016", 140) == 0


def test_640_for_a_number_without_any_avatar_stays_the_default(fake: RunningFake) -> None:
    a = run(fake, lambda s: s.get("user", "10020", 640))
    assert (a.is_default, a.size, a.body) == (True, 640, penguin_bytes(640))
    assert fake.count("user", "10020", 140) == 1  # it looked, found the default there too


def test_640_stays_the_default_when_140_cannot_be_had(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        fake.fault("error500", numbers=["10017"])
        with pytest.raises(UpstreamError):
            await svc.fetch("user", "10017", 140)  # remembered for negative_ttl
        fake.fault("nohd", numbers=["10017"])
        served = await svc.fetch("user", "10017", 640)
        assert (served.avatar.is_default, served.avatar.size) == (True, 640)
        assert served.avatar.body == penguin_bytes(640)

    run(fake, test, negative_ttl=30)
    assert fake.count("user", "10017", 140) == 1


def test_default_404_and_hd_fallback(fake: RunningFake) -> None:
    fake.fault("nohd", numbers=["10018"])

    async def test(svc: AvatarService) -> None:
        real = await svc.fetch("user", "10018", 640, "", "404")  # a real avatar at 140
        assert real.avatar.size == 140
        with pytest.raises(NoAvatar) as missing:
            await svc.fetch("user", "10010", 640, "", "404")
        answer = failure_answer(missing.value)
        assert (answer.err_code, answer.http_status) == (1, 404)

    run(fake, test)
