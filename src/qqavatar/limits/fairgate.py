"""A fair share of the upstream for every client: cache misses queue per client address.

At most `capacity` misses of the API fetch at once (the upstream's own gate holds as many).
When every place is taken, a miss waits in its client's queue, and places that free up go
to the waiting clients in turn. A client that asks for a hundred uncached avatars at once
waits behind its own requests, not in front of everyone else's; with one client, or
without contention, this is first come, first served and costs nothing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairGate:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        # Waiting clients in the order they get their next place (round robin).
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    @asynccontextmanager
    async def place(self, client: str, wait: float) -> AsyncIterator[None]:
        """Hold a place while the block runs; TimeoutError after `wait` s without one."""
        async with asyncio.timeout(wait):
            await self._acquire(client)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, client: str) -> None:
        if self.in_use < self.capacity and not self._queues:
            self.in_use += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(client, deque()).append(future)
        try:
            await future
        except BaseException:  # cancelled or timed out while waiting
            if future.done() and not future.cancelled():
                self._release()  # a place was given in the same moment: pass it on
            else:
                self._forget(client, future)
            raise

    def _release(self) -> None:
        self.in_use -= 1
        while self.in_use < self.capacity and self._queues:
            client, queue = next(iter(self._queues.items()))
            future = queue.popleft()
            if queue:
                self._queues.move_to_end(client)  # its next request waits for the others
            else:
                del self._queues[client]
            if not future.done():
                future.set_result(None)
                self.in_use += 1

    def _forget(self, client: str, future: asyncio.Future[None]) -> None:
        queue = self._queues.get(client)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._queues[client]
