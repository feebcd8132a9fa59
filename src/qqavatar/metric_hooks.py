"""Measurement points inside the core; no-ops until the metrics feature connects them.

The core (the avatar pipeline, the statistics flusher) calls `metric_hooks.flight_joined()`
and the like; `metrics.start` rebinds these names to Prometheus updates in each server
worker. This module imports nothing on purpose: the CLI imports the core before
`qqavatar serve` decides whether metrics live in memory (one worker) or in files shared
by several, and prometheus_client fixes that choice when it is first imported, a choice
forked workers would inherit.
"""

from __future__ import annotations

from collections.abc import Callable


def _nothing(*_args: object) -> None:
    return None


# A caller waited for an avatar fetch that another caller had started (single-flight).
flight_joined: Callable[[], None] = _nothing
# One fetch from qlogo ended after `seconds`; `err_code` < 0 if it failed, else 0.
upstream_fetched: Callable[[float, int], None] = _nothing
# The shared (Redis) avatar tier answered instead of the upstream: "hit" (a fresh copy),
# "stale" (an expired one, refreshed next), "joined" (another server's fetch, waited for).
shared_lookup: Callable[[str], None] = _nothing
# The statistics flusher wrote its batch (or had nothing to write).
counters_flushed: Callable[[], None] = _nothing
