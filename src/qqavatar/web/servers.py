"""The HTTP servers `qqavatar serve` can run the application on.

granian on its RSGI interface is the default: on a cached avatar it measured clearly
ahead of uvicorn (uvloop + httptools) on ASGI, see docs/benchmarks.md. uvicorn stays
available (`--server uvicorn`), serving the same app over ASGI.
"""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from granian.server import MPServer, MTServer

ServerName = Literal["granian", "uvicorn"]
SERVERS: tuple[ServerName, ...] = ("granian", "uvicorn")
DEFAULT_SERVER: ServerName = "granian"


def with_granian_loggers(log_config: dict[str, Any]) -> dict[str, Any]:
    """The service's logging config, with granian's own loggers sent to the same handler."""
    loggers = {**log_config.get("loggers", {}),
               "_granian": {"handlers": [], "propagate": True},
               "granian.access": {"handlers": [], "propagate": False}}
    return {**log_config, "loggers": loggers}


def granian_server(target: str, host: str, port: int, workers: int,
                   log_config: dict[str, Any] | None = None) -> MPServer | MTServer:
    """granian serving the RSGI app factory `target` (the benchmark's floor uses this too)."""
    from granian import Granian
    from granian.constants import Interfaces

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
    )


def run_granian(host: str, port: int, workers: int, log_config: dict[str, Any]) -> None:
    """Serve `web.rsgi` until SIGINT/SIGTERM; each worker starts its own app."""
    granian_server("qqavatar.web.rsgi:create_rsgi_app", host, port, workers,
                   with_granian_loggers(log_config)).serve()
