"""AvatarService against the real fake qlogo over loopback (a child process)."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest

from qqavatar.avatars import Avatar, AvatarService, Failure, UpstreamError
from qqavatar.avatars import service as service_module
from qqavatar.avatars.cache import entry_cost
from qqavatar.fakeqlogo import FaultMode, RunningFake, avatar_bytes, penguin_bytes, spawn
from qqavatar.handlers.digests import json_base64
from qqavatar.protocol.avatar_errors import failure_answer

T = TypeVar("T")
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    with spawn() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_fake(fake: RunningFake) -> None:
    fake.reset()


@asynccontextmanager
async def avatar_service(fake: RunningFake, **options: Any) -> AsyncIterator[AvatarService]:
    settings: dict[str, Any] = {"timeout": 2.0, "max_bytes": 2 * MiB, "cache_max_bytes": 16 * MiB}
    settings.update(options)
    svc = AvatarService(user_url=fake.user_url, group_url=fake.group_url, **settings)
    try:
        yield svc
    finally:
        await svc.aclose()


def with_service(fake: RunningFake, test: Callable[[AvatarService], Awaitable[T]], **options: Any) -> T:
    async def main() -> T:
        async with avatar_service(fake, **options) as svc:
            return await test(svc)
    return asyncio.run(main())


# --- what comes back -------------------------------------------------------------------


def test_a_jpeg_user_avatar(fake: RunningFake) -> None:
    a = with_service(fake, lambda s: s.get("user", "10001", 100))
    assert a.body == avatar_bytes("user", "10001", 0, 100)
    assert a.content_type == "image/jpeg"
    assert not a.is_default
    assert a.max_age == 86400  # our ttl, shorter than qlogo's max-age=2592000


def test_a_png_user_avatar(fake: RunningFake) -> None:
    a = with_service(fake, lambda s: s.get("user", "10005", 640))
    assert a.body == avatar_bytes("user", "10005", 0, 640)
    assert a.content_type == "image/png"


def test_a_group_avatar_uses_the_group_template(fake: RunningFake) -> None:
    a = with_service(fake, lambda s: s.get("group", "20002", 40))
    assert a.body == avatar_bytes("group", "20002", 0, 40)
    assert fake.count("group", "20002", 40) == 1


def test_a_number_without_avatar_is_the_default_image(fake: RunningFake) -> None:
    a = with_service(fake, lambda s: s.get("user", "10000", 100), default_ttl=600)
    assert a.is_default
    assert a.body == penguin_bytes(100)
    assert a.content_type == "image/jpeg"
    assert a.max_age == 600  # default_ttl, although qlogo said no-cache


def test_upstream_max_age_caps_our_ttl(fake: RunningFake) -> None:
    a = with_service(fake, lambda s: s.get("user", "10001", 40), ttl=10**9)
    assert a.max_age == 2592000


def test_json_base64_is_php_escaped_base64(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> list[Avatar]:
        return [await svc.get("user", str(n), 100) for n in range(10001, 10010)]

    encoded = [(a, json_base64(a.body)) for a in with_service(fake, test)]
    for a, b64 in encoded:
        assert b"/" not in b64.replace(b"\\/", b"")
        assert base64.b64decode(b64.replace(b"\\/", b"/"), validate=True) == a.body
    assert any(b"\\/" in b64 for _, b64 in encoded)


def test_etag_is_strong_stable_and_per_image(fake: RunningFake) -> None:
    first = with_service(fake, lambda s: s.get("user", "10001", 100))
    again = with_service(fake, lambda s: s.get("user", "10001", 100))
    other = with_service(fake, lambda s: s.get("user", "10001", 40))
    assert re.fullmatch(r'"[0-9a-f]{32,}"', first.etag)
    assert first.etag == again.etag
    assert first.etag != other.etag


# --- caching ---------------------------------------------------------------------------


def test_second_get_is_served_from_memory(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        assert svc.cached("user", "10001", 100) is None
        a = await svc.get("user", "10001", 100)
        assert svc.cached("user", "10001", 100) is a
        assert await svc.get("user", "10001", 100) is a
        assert svc.upstream_requests == 1

    with_service(fake, test)
    assert fake.count("user", "10001", 100) == 1


def test_cache_stays_within_its_byte_bound_in_lru_order(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        for n in range(10011, 10031):
            await svc.get("user", str(n), 100)
            assert svc.cache.total_bytes <= svc.cache.max_bytes
        assert 2 <= len(svc.cache) < 20
        kept = svc.cache.keys()
        assert kept == [("user", str(n), 100, "") for n in range(10031 - len(kept), 10031)]
        # Touch the oldest; the next insert evicts the one after it instead.
        oldest, second = kept[0], kept[1]
        assert svc.cached(*oldest) is not None
        number = 10031
        while second in svc.cache:  # until the next eviction
            await svc.get("user", str(number), 100)
            number += 1
        assert oldest in svc.cache

    # Room for a handful of ~1.5 KB fake avatars, not twenty.
    with_service(fake, test, cache_max_bytes=6 * (1563 * 7 // 3 + 600))


def test_an_avatar_bigger_than_the_cache_is_served_but_not_kept(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        a = await svc.get("user", "10001", 640)
        assert entry_cost(a) > svc.cache.max_bytes
        assert svc.cached("user", "10001", 640) is None
        await svc.get("user", "10001", 640)
        assert svc.upstream_requests == 2

    with_service(fake, test, cache_max_bytes=10_000)


def test_an_expired_avatar_is_fetched_again(fake: RunningFake, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(service_module, "monotonic", lambda: clock[0])

    async def test(svc: AvatarService) -> None:
        a = await svc.get("user", "10001", 100)
        assert a.expires_at == 1060.0
        clock[0] = 1059.0
        assert svc.cached("user", "10001", 100) is a
        clock[0] = 1060.0
        assert svc.cached("user", "10001", 100) is None
        b = await svc.get("user", "10001", 100)
        assert b is not a
        assert b.expires_at == 1120.0
        assert svc.upstream_requests == 2

    with_service(fake, test, ttl=60, stale_ttl=0)  # no stale answers: wait for the refresh
    assert fake.count("user", "10001", 100) == 2


def test_ttl_zero_caches_nothing(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        await svc.get("user", "10001", 100)
        assert svc.cached("user", "10001", 100) is None

    with_service(fake, test, ttl=0)


def test_a_changed_avatar_shows_after_expiry(fake: RunningFake, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(service_module, "monotonic", lambda: clock[0])
    fake.fault("change")

    async def test(svc: AvatarService) -> tuple[Avatar, Avatar, Avatar]:
        first = await svc.get("user", "10002", 100)
        cached = await svc.get("user", "10002", 100)
        clock[0] = 61
        return first, cached, await svc.get("user", "10002", 100)

    first, cached, fresh = with_service(fake, test, ttl=60, stale_ttl=0)
    assert cached is first
    assert fresh.etag != first.etag


# --- single-flight ---------------------------------------------------------------------


def test_fifty_concurrent_misses_make_one_upstream_request(fake: RunningFake) -> None:
    fake.fault("slow", delay_ms=200)  # keep the flight open while all fifty arrive

    async def test(svc: AvatarService) -> None:
        results = await asyncio.gather(*(svc.get("user", "10003", 140) for _ in range(50)))
        assert all(r is results[0] for r in results)
        assert svc.upstream_requests == 1

    with_service(fake, test)
    assert fake.count("user", "10003", 140) == 1
    assert fake.stats()["requests"] == 1


def test_a_burst_of_distinct_misses_all_succeed(fake: RunningFake) -> None:
    # More callers than the in-flight gate: they queue and are served in turn.
    numbers = [str(n) for n in range(300001, 300221) if n % 10]  # no defaults

    async def test(svc: AvatarService) -> None:
        results = await asyncio.gather(*(svc.get("user", n, 40) for n in numbers))
        assert [r.body for r in results] == [avatar_bytes("user", n, 0, 40) for n in numbers]
        assert svc.upstream_requests == len(numbers)

    with_service(fake, test)
    assert fake.stats()["requests"] == len(numbers)


def test_concurrent_failures_make_one_upstream_request(fake: RunningFake) -> None:
    fake.fault("error500", delay_ms=100)

    async def test(svc: AvatarService) -> list[BaseException | Avatar]:
        return await asyncio.gather(*(svc.get("user", "10003", 40) for _ in range(10)),
                                    return_exceptions=True)

    results = with_service(fake, test)
    assert all(isinstance(r, UpstreamError) and r.failure is Failure.INVALID for r in results)
    assert fake.count("user", "10003", 40) == 1


def test_a_cancelled_caller_does_not_cancel_the_fetch(fake: RunningFake) -> None:
    fake.fault("slow", delay_ms=200)

    async def test(svc: AvatarService) -> None:
        leaving = asyncio.create_task(svc.get("user", "10004", 100))
        staying = asyncio.create_task(svc.get("user", "10004", 100))
        await asyncio.sleep(0.05)
        leaving.cancel()
        a = await staying
        assert a.body == avatar_bytes("user", "10004", 0, 100)
        assert leaving.cancelled()

    with_service(fake, test)
    assert fake.count("user", "10004", 100) == 1


def test_the_fetch_completes_into_the_cache_when_every_caller_left(fake: RunningFake) -> None:
    fake.fault("slow", delay_ms=100)

    async def test(svc: AvatarService) -> None:
        caller = asyncio.create_task(svc.get("user", "10004", 40))
        await asyncio.sleep(0.02)
        caller.cancel()
        for _ in range(100):
            if svc.cached("user", "10004", 40) is not None:
                return
            await asyncio.sleep(0.02)
        pytest.fail("the abandoned fetch never reached the cache")

    with_service(fake, test)


# --- upstream failures -----------------------------------------------------------------


@pytest.mark.parametrize(("mode", "code", "status"), [
    ("error500", -3, 502),
    ("html", -3, 502),
    ("notimage", -3, 502),
    ("huge", -4, 502),
    ("reset", -1, 502),
    ("hang", -2, 504),
    ("drip", -2, 504),
])
def test_each_fault_is_an_upstream_error_and_is_not_cached_as_an_avatar(
        fake: RunningFake, mode: FaultMode, code: int, status: int) -> None:
    fake.fault(mode)
    timeout = 0.5

    async def test(svc: AvatarService) -> None:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as caught:
            await svc.get("user", "10001", 100)
        elapsed = time.monotonic() - started
        answer = failure_answer(caught.value)
        assert (answer.err_code, answer.http_status) == (code, status)
        assert answer.err_msg  # Chinese text for data.err_msg
        assert elapsed < 2 * timeout + 0.5  # hang: the read timeout; drip: the total cap
        assert svc.cached("user", "10001", 100) is None
        assert len(svc.cache) == 0
        # With the negative cache off, once qlogo is well again, so are we.
        fake.fault("none")
        assert (await svc.get("user", "10001", 100)).content_type == "image/jpeg"
        assert svc.upstream_requests == 2

    with_service(fake, test, timeout=timeout, negative_ttl=0)


def test_error_messages() -> None:
    assert [failure_answer(UpstreamError(Failure(c))).err_msg for c in (-1, -2, -3, -4)] == [
        "头像服务器连接失败", "头像服务器响应超时", "头像服务器返回了无效的图片", "头像图片过大"]


def test_a_fault_on_one_number_leaves_the_others_alone(fake: RunningFake) -> None:
    fake.fault("error500", numbers=["10001"])

    async def test(svc: AvatarService) -> None:
        with pytest.raises(UpstreamError):
            await svc.get("user", "10001", 100)
        await svc.get("user", "10002", 100)

    with_service(fake, test)


def test_slow_but_within_the_timeout_is_fine(fake: RunningFake) -> None:
    fake.fault("slow", delay_ms=300)
    a = with_service(fake, lambda s: s.get("user", "10001", 100), timeout=1.0)
    assert a.content_type == "image/jpeg"


def test_a_declared_length_over_the_cap_is_refused_without_reading(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        with pytest.raises(UpstreamError) as caught:
            await svc.get("user", "10001", 640)  # ~13 KB
        assert caught.value.failure is Failure.TOO_LARGE

    with_service(fake, test, max_bytes=1000)


class CountingTransport(httpx.AsyncBaseTransport):
    """A real transport that counts the body bytes the client actually consumed."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.body_bytes = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_Counted(self, response.stream), extensions=response.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Counted(httpx.AsyncByteStream):
    def __init__(self, owner: CountingTransport, stream: Any) -> None:
        self.owner, self.stream = owner, stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.owner.body_bytes += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


def test_a_huge_body_is_abandoned_as_soon_as_it_passes_the_cap(fake: RunningFake) -> None:
    fake.fault("huge")  # 5 MiB, no Content-Length
    transport = CountingTransport()

    async def test(svc: AvatarService) -> None:
        with pytest.raises(UpstreamError) as caught:
            await svc.get("user", "10001", 100)
        assert caught.value.failure is Failure.TOO_LARGE

    with_service(fake, test, max_bytes=256 * 1024, transport=transport)
    assert 256 * 1024 < transport.body_bytes <= 256 * 1024 + 128 * 1024


def test_nobody_listening_is_a_connection_error(fake: RunningFake) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused

        async def main() -> None:
            svc = AvatarService(user_url=f"http://127.0.0.1:{port}/g?nk={{qq}}&s={{size}}",
                                group_url=fake.group_url, timeout=1.0, max_bytes=MiB,
                                cache_max_bytes=MiB)
            try:
                with pytest.raises(UpstreamError) as caught:
                    await svc.get("user", "10001", 100)
                answer = failure_answer(caught.value)
                assert (answer.err_code, answer.http_status) == (-1, 502)
            finally:
                await svc.aclose()

        asyncio.run(main())


# --- URLs ------------------------------------------------------------------------------


def test_urls_follow_the_templates() -> None:
    svc = AvatarService(user_url="https://q1.qlogo.cn/g?b=qq&nk={qq}&s={size}",
                        group_url="https://p.qlogo.cn/gh/{group}/{group}/{size}/",
                        timeout=1, max_bytes=1, cache_max_bytes=1)
    assert svc.url("user", "12345", 640) == "https://q1.qlogo.cn/g?b=qq&nk=12345&s=640"
    assert svc.url("group", "12345", 40) == "https://p.qlogo.cn/gh/12345/12345/40/"
    with pytest.raises(AssertionError):
        svc.url("user", "1/../x", 40)
    asyncio.run(svc.aclose())


def test_a_broken_template_fails_at_construction() -> None:
    with pytest.raises(KeyError):
        AvatarService(user_url="https://x/{uin}", group_url="https://x/{group}",
                      timeout=1, max_bytes=1, cache_max_bytes=1)
