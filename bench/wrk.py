"""Load with `wrk`: one run, its Lua script, its numbers.

Every run gets a generated Lua script whose `done()` prints the summary as one JSON
line (exact microsecond percentiles instead of wrk's rounded text). Optional parts:
distinct avatar numbers per request, the paths of a file in turn (a load drawn in
advance), a fixed delay per connection (a steady rate below the peak), and a stop after
N requests.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from .procs import pinned

_REPORT = r"""
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

_DISTINCT = r"""
local counter = 0
local answered = 0
local base = {base}
local limit = {limit}
local prefix = [==[{prefix}]==]
local suffix = [==[{suffix}]==]
request = function()
  counter = counter + 1
  return wrk.format(nil, prefix .. string.format("%d", base + counter) .. suffix)
end
-- Stop after `limit` answers (stopping after `limit` requests sent would count only the
-- first answer of the last round, one per connection still in flight).
response = function(status, headers, body)
  answered = answered + 1
  if limit > 0 and answered >= limit then wrk.thread:stop() end
end
"""

_PATHS = r"""
local paths = {{}}
for line in io.lines([==[{file}]==]) do paths[#paths + 1] = line end
local index = 0
request = function()
  index = index % #paths + 1
  return wrk.format(nil, paths[index])
end
"""

_DELAY = """
delay = function() return {delay_ms} end
"""


@dataclass(frozen=True)
class Load:
    """How wrk drives a target; the same Load for every target of a scenario."""

    connections: int = 50
    duration: float = 10.0
    threads: int = 1
    timeout: float = 10.0


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    bad_status: int  # answers other than 2xx/3xx

    @property
    def clean(self) -> bool:
        return self.socket_errors == 0 and self.bad_status == 0 and self.requests > 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def parse(output: str) -> WrkResult:
    line = next((line for line in output.splitlines() if line.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")
    data = json.loads(line[len("BENCH "):])
    seconds = max(data["duration_us"], 1) / 1e6
    return WrkResult(
        requests=data["requests"],
        seconds=seconds,
        rps=data["requests"] / seconds,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        bad_status=data["status"],
    )


def script(*, distinct: tuple[str, str, int] | None = None, limit: int = 0,
           delay_ms: int | None = None, paths_file: Path | None = None) -> str:
    """The Lua for one run. `distinct`: (path before the number, after it, first number - 1);
    `paths_file`: one path a line, asked in turn (round again at the end)."""
    parts = [_REPORT]
    if paths_file is not None:
        if "]==]" in str(paths_file):
            raise ValueError("file name cannot be quoted for Lua")
        parts.append(_PATHS.format(file=paths_file))
    if distinct is not None:
        prefix, suffix, base = distinct
        if "]==]" in prefix + suffix:
            raise ValueError("path cannot be quoted for Lua")
        parts.append(_DISTINCT.format(base=base, limit=limit, prefix=prefix, suffix=suffix))
    if delay_ms is not None:
        parts.append(_DELAY.format(delay_ms=max(0, int(delay_ms))))
    return "\n".join(parts)


def run(url: str, load: Load, *, cpu: int | None, work_dir: Path, name: str,
        lua: str | None = None) -> WrkResult:
    """One wrk run against `url` (the host part; a `distinct` script supplies the paths)."""
    script_path = work_dir / f"{name}.lua"
    script_path.write_text(lua if lua is not None else script())
    command = pinned(
        ["wrk", "-t", str(load.threads), "-c", str(load.connections),
         "-d", f"{max(1, math.ceil(load.duration))}s",  # wrk takes whole seconds only
         "--timeout", f"{max(1, math.ceil(load.timeout))}s",
         "-s", str(script_path), url], cpu)
    # wrk stops itself after the duration; the margin only guards against a hung run.
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          timeout=load.duration + load.timeout + 30)
    (work_dir / f"{name}.out").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return parse(done.stdout)
