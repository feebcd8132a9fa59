"""Single-flight: concurrent callers asking for one key share one piece of work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from functools import partial
from typing import Any, Generic, TypeVar

from .. import metric_hooks

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """One task per key while it runs; every caller awaits that task.

    The work runs in its own task, detached from the callers: a caller that is cancelled
    (its client went away) stops waiting, but the work goes on for the others, and its
    result still lands wherever the work puts it (the cache).

    `counted`: callers joining work already under way are counted in the metrics (waits for
    an upstream fetch); reads of the disk or Redis tier are not.
    """

    def __init__(self, *, counted: bool = True) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}
        self._counted = counted

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: object) -> bool:
        return key in self._tasks

    async def run(self, key: K, work: Callable[[], Coroutine[Any, Any, V]]) -> V:
        if self._counted and key in self._tasks:
            metric_hooks.flight_joined()  # metrics: a caller sharing work already under way
        return await asyncio.shield(self._task(key, work))

    def start(self, key: K, work: Callable[[], Coroutine[Any, Any, V]]) -> bool:
        """Start the work for `key` unless it runs already, without waiting for it (a
        background refresh); True when this call started it."""
        if key in self._tasks:
            return False
        self._task(key, work)
        return True

    def _task(self, key: K, work: Callable[[], Coroutine[Any, Any, V]]) -> asyncio.Task[V]:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(work(), name=f"single-flight {key!r}")
            self._tasks[key] = task
            task.add_done_callback(partial(self._done, key))
        return task

    def _done(self, key: K, task: asyncio.Task[V]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # mark it retrieved: no "never retrieved" warning if all waiters left

    async def aclose(self) -> None:
        """Cancel whatever is still running and wait for it to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
