"""Start a fake qlogo for a test: `with start_fake_qlogo() as fake: ...`.

For fixtures in conftest.py (no fixtures here). The returned `RunningFake` has `url`,
`port`, `user_url`/`group_url` (templates for the settings), `stats()`, `count(kind,
number, size)`, `reset()`, `fault(mode, delay_ms=None, numbers=None, rate=None, seed=None)`
(`fault("chaos", rate=0.3, seed=7)`: a seeded 30 % of requests fail in assorted ways),
`injected()` (what chaos dealt, by mode) and `stop()`.
Numbers ending in 0 have no avatar (default image), 1-4 give JPEG, 5-9 PNG; see the
docstring of `qqavatar.fakeqlogo`.
"""

from __future__ import annotations

from qqavatar.fakeqlogo import FakeStats, FaultMode, RunningFake, serve_in_thread, spawn

__all__ = ["FakeStats", "FaultMode", "RunningFake", "start_fake_qlogo"]


def start_fake_qlogo(*, in_thread: bool = False) -> RunningFake:
    """A fresh fake on a free loopback port.

    By default a child process (`python -m qqavatar.fakeqlogo`), so it is unaffected by
    the test's own event loops and servers; `in_thread=True` starts in ~10 ms instead of
    ~0.5 s. Call `stop()` when done; a child process left running is stopped at exit.
    """
    return serve_in_thread() if in_thread else spawn()
