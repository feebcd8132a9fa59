"""The statistics feature: count every answered call, flush to the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..components import Runtime
from .collector import StatsCollector
from .recorder import StatsRecorder
from .sink import SqlStatsSink

if TYPE_CHECKING:
    from ..gateway import Gateway


async def start(runtime: Runtime, gateway: Gateway) -> None:
    if runtime.engine is None:
        return  # nowhere to keep counts (a server without a database counts nothing)
    collector = StatsCollector(StatsRecorder(), SqlStatsSink(runtime.engine))
    runtime.stats = collector
    gateway.observers.append(collector.recorder.observe)
    collector.start()
    runtime.closers.append(collector.stop)  # after the last answer: write everything left
