"""The HTTP servers `qqavatar serve` can run the application on.

granian on its RSGI interface is the default: on a cached avatar it measured clearly
ahead of uvicorn (uvloop + httptools) on ASGI, see docs/benchmarks.md. uvicorn stays
available (`--server uvicorn`), serving the same app over ASGI.

Bounds on what a client may send (tests/adversarial/test_resource_bounds.py measures them):
granian answers 431 to a request line plus headers over `MAX_HEAD_BYTES` or over 100
headers, and closes a connection that has not sent its headers within `client_timeout`
seconds; bodies are capped and timed by `web.dispatch` (the bounds of `web.request`).

granian's `backpressure` caps the connections a worker accepts (not requests in flight), and
granian 2.8 never times out a connection that sends nothing: at its default (1024) a
thousand idle sockets starved every new client. So the cap is set from the descriptors a
worker may open (the soft limit raised to the hard one first): an attacker now needs that
many sockets, and the kernel's limits and any proxy in front bound those.
"""

from __future__ import annotations

import multiprocessing
import resource
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from granian.server import MPServer, MTServer

ServerName = Literal["granian", "uvicorn"]
SERVERS: tuple[ServerName, ...] = ("granian", "uvicorn")
DEFAULT_SERVER: ServerName = "granian"

# Request line plus headers. A YesApi call needs a few hundred bytes (a JSONP callback and a
# sign included); granian's default (408 KiB) would let each slow client pin that much.
MAX_HEAD_BYTES = 64 * 1024
# Connections per worker: what its descriptors allow, less a margin for files, the database
# and upstream sockets; never below granian's own default, never past a sane ceiling.
MIN_CONNECTIONS, MAX_CONNECTIONS, FD_MARGIN = 1024, 16384, 256


def connection_cap() -> int:
    """Raise this process's descriptor limit as far as allowed (workers inherit it) and
    return the connections one worker may hold."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + FD_MARGIN if hard == resource.RLIM_INFINITY \
        else min(hard, MAX_CONNECTIONS + FD_MARGIN)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # keep what we have
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, soft - FD_MARGIN))


def with_granian_loggers(log_config: dict[str, Any]) -> dict[str, Any]:
    """The service's logging config, with granian's own loggers sent to the same handler."""
    loggers = {**log_config.get("loggers", {}),
               "_granian": {"handlers": [], "propagate": True},
               "granian.access": {"handlers": [], "propagate": False}}
    return {**log_config, "loggers": loggers}


def granian_server(target: str, host: str, port: int, workers: int,
                   log_config: dict[str, Any] | None = None, *,
                   client_timeout: float = 10.0) -> MPServer | MTServer:
    """granian serving the RSGI app factory `target` (the benchmark's floor uses this too)."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    # Fresh worker processes, as uvicorn's: forking this process would copy its threads'
    # locks (the demo's fake qlogo runs in a thread) and modules imported before the
    # environment was final.
    multiprocessing.set_start_method("spawn", force=True)
    return Granian(
        target,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        workers=workers,
        websockets=False,
        log_access=False,
        log_dictconfig=log_config,
        backpressure=connection_cap(),
        http1_settings=HTTP1Settings(header_read_timeout=max(1, round(client_timeout * 1000)),
                                     max_buffer_size=MAX_HEAD_BYTES),
    )


def run_granian(host: str, port: int, workers: int, log_config: dict[str, Any]) -> None:
    """Serve `web.rsgi` until SIGINT/SIGTERM; each worker starts its own app."""
    from ..settings import Settings

    granian_server("qqavatar.web.rsgi:create_rsgi_app", host, port, workers,
                   with_granian_loggers(log_config),
                   client_timeout=Settings().client_timeout).serve()
