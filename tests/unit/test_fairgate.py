"""The upstream's places go to waiting clients in turn (limits/fairgate.py)."""

from __future__ import annotations

import asyncio

import pytest

from qqavatar.limits.fairgate import FairGate

pytestmark = pytest.mark.anyio


async def test_a_flood_waits_behind_itself() -> None:
    gate = FairGate(2)
    release = asyncio.Event()
    order: list[str] = []

    async def miss(client: str, name: str) -> None:
        async with gate.place(client, wait=10):
            order.append(name)
            await release.wait()

    holders = [asyncio.create_task(miss("A", f"A{i}")) for i in range(2)]
    await asyncio.sleep(0)
    flood = [asyncio.create_task(miss("A", f"A{i}")) for i in range(2, 6)]
    await asyncio.sleep(0)
    other = asyncio.create_task(miss("B", "B0"))
    await asyncio.sleep(0)
    assert order == ["A0", "A1"] and gate.waiting == 5
    release.set()
    await asyncio.gather(*holders, *flood, other)
    # B's request came after four of A's, and got the second place that freed up.
    assert order[:4] == ["A0", "A1", "A2", "B0"], order
    assert gate.in_use == 0 and gate.waiting == 0


async def test_one_client_is_first_come_first_served() -> None:
    gate = FairGate(1)
    order: list[int] = []

    async def miss(index: int) -> None:
        async with gate.place("A", wait=10):
            order.append(index)
            await asyncio.sleep(0)

    await asyncio.gather(*(miss(index) for index in range(6)))
    assert order == list(range(6))


async def test_a_wait_that_times_out_or_is_cancelled_gives_nothing_away() -> None:
    gate = FairGate(1)
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.place("A", wait=10):
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    with pytest.raises(TimeoutError):
        async with gate.place("B", wait=0.01):
            pass
    cancelled = asyncio.create_task(gate.place("C", wait=10).__aenter__())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert gate.waiting == 0
    release.set()
    await task
    assert gate.in_use == 0
    async with gate.place("D", wait=1):
        assert gate.in_use == 1
