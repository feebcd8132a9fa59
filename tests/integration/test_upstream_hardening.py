"""The upstream is trusted for its own host only: redirects off the template hosts are
refused, and the size bound counts a gzip body's inflated bytes as they come out. Against
the fake qlogo in a child process (a real HTTP server), its redirect and gzip faults."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from qqavatar.avatars import AvatarService, UpstreamError
from qqavatar.avatars.failures import INVALID, TOO_LARGE, UNAVAILABLE
from qqavatar.avatars.upstream import Upstream, redirect_target
from qqavatar.fakeqlogo import BOMB_BYTES, RunningFake, avatar_bytes, gzip_bomb, spawn
from tests.unit.avatars_support import MiB, run


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    with spawn() as running:  # its own process: its memory is not this test's
        yield running


@pytest.fixture(autouse=True)
def _clean(fake: RunningFake) -> None:
    fake.reset()


# --- the fake's faults, as any client sees them ------------------------------------------


def test_the_fake_redirects_on_its_host_or_away_from_it(fake: RunningFake) -> None:
    fake.fault("redirect", numbers=["30001"])
    fake.fault("redirect_away", numbers=["30002"])
    with httpx.Client(base_url=fake.url, trust_env=False) as client:
        here = client.get("/g?b=qq&nk=30001&s=100")
        assert here.status_code == 302
        assert here.headers["location"] == "/g?b=qq&nk=30001&s=100&redirected=1"
        away = client.get("/g?b=qq&nk=30002&s=100")
        assert away.headers["location"] == \
            f"http://localhost:{fake.port}/g?b=qq&nk=30002&s=100&redirected=1"
        followed = client.get(away.headers["location"])
        assert followed.content == avatar_bytes("user", "30002", 0, 100)
    assert fake.count("user", "30002", 100) == 2


def test_the_fake_gzips_an_image_or_a_bomb(fake: RunningFake) -> None:
    fake.fault("gzip", numbers=["30003"])
    fake.fault("gzipbomb", numbers=["30004"])
    with httpx.Client(base_url=fake.url, trust_env=False) as client:
        zipped = client.get("/g?b=qq&nk=30003&s=100")
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == avatar_bytes("user", "30003", 0, 100)
        with client.stream("GET", "/g?b=qq&nk=30004&s=100") as bomb:
            raw = b"".join(bomb.iter_raw())
    assert raw == gzip_bomb() and len(raw) < 100 * 1024
    assert len(gzip.decompress(raw)) == BOMB_BYTES


# --- the service --------------------------------------------------------------------------


def test_a_redirect_on_the_template_host_is_followed(fake: RunningFake) -> None:
    fake.fault("redirect", numbers=["30011"])
    avatar = run(fake, lambda svc: svc.get("user", "30011", 100))
    assert avatar.body == avatar_bytes("user", "30011", 0, 100)
    assert fake.count("user", "30011", 100) == 2  # the redirect, then its target


def test_a_redirect_off_the_template_hosts_is_refused(fake: RunningFake) -> None:
    fake.fault("redirect_away", numbers=["30012"])

    async def test(svc: AvatarService) -> None:
        with pytest.raises(UpstreamError) as refused:
            await svc.fetch("user", "30012", 100)
        assert refused.value.failure is INVALID
        assert "redirect to 'http://localhost:" in refused.value.detail
        assert refused.value.host_fault is False  # about this answer, not the host's health

    run(fake, test)
    assert fake.count("user", "30012", 100) == 1  # "localhost" was never asked


def test_a_redirect_to_another_configured_template_host_is_followed(fake: RunningFake) -> None:
    fake.fault("redirect_away", numbers=["30013"])

    async def fetch() -> bytes:
        upstream = Upstream(timeout=2, max_bytes=2 * MiB, hosts=["LOCALHOST"])
        try:
            return (await upstream.fetch(fake.user_url.format(qq="30013", size=100))).body
        finally:
            await upstream.aclose()

    assert asyncio.run(fetch()) == avatar_bytes("user", "30013", 0, 100)
    assert fake.count("user", "30013", 100) == 2


def test_a_gzip_encoded_avatar_is_inflated(fake: RunningFake) -> None:
    fake.fault("gzip", numbers=["30014"])
    avatar = run(fake, lambda svc: svc.get("user", "30014", 100))
    assert avatar.body == avatar_bytes("user", "30014", 0, 100)


def test_a_gzip_bomb_stops_at_the_bound_as_it_inflates(fake: RunningFake) -> None:
    """64 KiB on the wire, 64 MiB inflated: refused as too large, and never more than the
    bound (plus the read buffers) in memory at once."""
    fake.fault("gzipbomb", numbers=["30015"])
    bound = 1 * MiB

    async def test(svc: AvatarService) -> None:
        with pytest.raises(UpstreamError) as refused:
            await svc.fetch("user", "30015", 100)
        assert refused.value.failure is TOO_LARGE

    tracemalloc.start()
    try:
        run(fake, test, max_bytes=bound)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * bound, f"peak {peak / MiB:.1f} MiB while inflating"


# --- the breaker: the host's failures, not bad answers about single avatars ----------------


@pytest.mark.parametrize("mode", ["html", "notimage", "truncated", "huge", "redirect_away"])
def test_avatars_qlogo_refuses_do_not_open_the_breaker(fake: RunningFake, mode: str) -> None:
    numbers = [str(31001 + i * 10) for i in range(10)]  # ten different avatars
    fake.fault(mode, numbers=numbers)  # type: ignore[arg-type]

    async def test(svc: AvatarService) -> None:
        for number in numbers:
            with pytest.raises(UpstreamError) as refused:
                await svc.fetch("user", number, 100)
            assert refused.value.failure in (INVALID, TOO_LARGE)
        assert svc.circuit_state == "closed"
        assert (await svc.fetch("user", "31201", 100)).cache == "MISS"  # everyone else: fine

    run(fake, test, negative_ttl=0, circuit_threshold=3)


@pytest.mark.parametrize("mode", ["error500", "reset", "hang"])
def test_host_failures_open_the_breaker(fake: RunningFake, mode: str) -> None:
    fake.fault(mode)  # type: ignore[arg-type]

    async def test(svc: AvatarService) -> None:
        for number in ("31301", "31302", "31303"):
            with pytest.raises(UpstreamError):
                await svc.fetch("user", number, 100)
        assert svc.circuit_state == "open"
        with pytest.raises(UpstreamError) as fast:
            await svc.fetch("user", "31304", 100)
        assert fast.value.failure is UNAVAILABLE

    run(fake, test, negative_ttl=0, circuit_threshold=3, timeout=0.3)
    assert fake.count("user", "31304", 100) == 0


def test_host_failures_among_enough_answers_keep_it_closed(fake: RunningFake) -> None:
    fake.fault("error500", numbers=[str(31401 + i * 10) for i in range(4)])

    async def test(svc: AvatarService) -> None:
        for i in range(4):  # one 500 for every two good answers: a third, under half
            await svc.fetch("user", str(31501 + i * 10), 100)
            await svc.fetch("user", str(31601 + i * 10), 100)
            with pytest.raises(UpstreamError):
                await svc.fetch("user", str(31401 + i * 10), 100)
        assert svc.circuit_state == "closed"

    run(fake, test, negative_ttl=0, circuit_threshold=3)


@pytest.mark.parametrize(("location", "followed"), [
    ("/g?b=qq&nk=1&s=100", "http://q1.qlogo.cn/g?b=qq&nk=1&s=100"),
    ("https://Q1.QLOGO.CN/g", "https://q1.qlogo.cn/g"),
    ("http://thirdqq.qlogo.cn/g", "http://thirdqq.qlogo.cn/g"),
    ("http://169.254.169.254/latest/meta-data/", None),
    ("//evil.example/g", None),
    ("http://q1.qlogo.cn.evil.example/g", None),
    ("file:///etc/passwd", None),
    ("javascript:alert(1)", None),
    ("//xn--/g", None),  # not IDNA
    ("http://[", None),
    ("", "http://q1.qlogo.cn/g?b=qq&nk=1&s=100"),  # the same URL: counted as a hop
])
def test_where_a_redirect_may_lead(location: str, followed: str | None) -> None:
    url = "http://q1.qlogo.cn/g?b=qq&nk=1&s=100"
    answer = httpx.Response(302, headers={"location": location},
                            request=httpx.Request("GET", url))
    allowed = frozenset({"q1.qlogo.cn", "thirdqq.qlogo.cn"})
    if followed is None:
        with pytest.raises(UpstreamError) as refused:
            redirect_target(url, answer, allowed)
        assert refused.value.failure is INVALID and "not a template host" in \
            refused.value.detail
    else:
        assert str(redirect_target(url, answer, allowed)) == followed
