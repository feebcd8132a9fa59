"""Single-flight semantics, without any network."""

from __future__ import annotations

import asyncio

import pytest

from qqavatar.avatars.flight import SingleFlight


def test_concurrent_callers_share_one_run() -> None:
    async def main() -> None:
        flights: SingleFlight[str, int] = SingleFlight()
        runs = 0

        async def work() -> int:
            nonlocal runs
            runs += 1
            await asyncio.sleep(0.01)
            return 42

        results = await asyncio.gather(*(flights.run("k", work) for _ in range(50)))
        assert results == [42] * 50
        assert runs == 1
        assert len(flights) == 0
        assert await flights.run("k", work) == 42  # finished flights are not reused
        assert runs == 2

    asyncio.run(main())


def test_different_keys_run_separately() -> None:
    async def main() -> None:
        flights: SingleFlight[str, str] = SingleFlight()

        async def work(value: str) -> str:
            await asyncio.sleep(0.01)
            return value

        got = await asyncio.gather(flights.run("a", lambda: work("a")), flights.run("b", lambda: work("b")))
        assert list(got) == ["a", "b"]

    asyncio.run(main())


def test_a_failure_reaches_every_waiter_and_clears_the_flight() -> None:
    async def main() -> None:
        flights: SingleFlight[str, int] = SingleFlight()

        async def work() -> int:
            await asyncio.sleep(0.01)
            raise ValueError("boom")

        results = await asyncio.gather(*(flights.run("k", work) for _ in range(5)),
                                       return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        assert len(flights) == 0

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_cancel_the_work_for_others() -> None:
    async def main() -> None:
        flights: SingleFlight[str, int] = SingleFlight()
        finished = asyncio.Event()

        async def work() -> int:
            await asyncio.sleep(0.05)
            finished.set()
            return 7

        first = asyncio.create_task(flights.run("k", work))
        second = asyncio.create_task(flights.run("k", work))
        await asyncio.sleep(0.01)
        first.cancel()
        assert await second == 7
        with pytest.raises(asyncio.CancelledError):
            await first
        assert finished.is_set()

    asyncio.run(main())


def test_work_finishes_even_when_every_waiter_leaves() -> None:
    async def main() -> None:
        flights: SingleFlight[str, int] = SingleFlight()
        finished = asyncio.Event()

        async def work() -> int:
            await asyncio.sleep(0.02)
            finished.set()
            raise ValueError("nobody listens")  # must not log "exception never retrieved"

        waiter = asyncio.create_task(flights.run("k", work))
        await asyncio.sleep(0.005)
        waiter.cancel()
        await asyncio.wait_for(finished.wait(), 1)
        await asyncio.sleep(0)
        assert len(flights) == 0

    asyncio.run(main())


def test_aclose_cancels_running_work() -> None:
    async def main() -> None:
        flights: SingleFlight[str, int] = SingleFlight()

        async def work() -> int:
            await asyncio.sleep(10)
            return 1

        waiter = asyncio.create_task(flights.run("k", work))
        await asyncio.sleep(0.01)
        await flights.aclose()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert len(flights) == 0

    asyncio.run(main())
