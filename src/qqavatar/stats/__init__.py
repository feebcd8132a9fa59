"""Statistics: per app, day and service counters of answered calls, and their reading.

`recorder` counts in memory (the gateway observer), `collector` flushes batches to a `sink`
(SQL tables) at least every second and on shutdown, `queries` reads them back for the CLI
and the dashboard. Days are Asia/Shanghai days (`days`).
"""

from .collector import StatsCollector
from .queries import DaySummary, StatsQueries, StatsRow, Usage
from .recorder import StatsBatch, StatsRecorder
from .sink import SqlStatsSink, StatsSink

__all__ = [
    "DaySummary",
    "SqlStatsSink",
    "StatsBatch",
    "StatsCollector",
    "StatsQueries",
    "StatsRecorder",
    "StatsRow",
    "StatsSink",
    "Usage",
]
