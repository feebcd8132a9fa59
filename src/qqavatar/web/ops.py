"""Endpoints for whoever runs the server: `/metrics`, `/healthz`, `/readyz`.

- `/healthz`: the process answers HTTP (liveness). Always 200 while it does.
- `/readyz`: it can do its work (readiness): the database answers `SELECT 1` within
  `ready_timeout` seconds → 200, else 503; the body names every check. Redis (when
  configured) and the upstream's circuit state are reported, and make the answer
  `"degraded": true`, but never fail readiness: every replica shares the one Redis and
  the one upstream, so taking replicas out of rotation would turn a degraded service
  (memory and upstream still answer; cached avatars still served) into no service at
  all. Redis is pinged through the worker's own `RedisLink`, so `/readyz` shows the
  state requests see, and a probe brings the link back as soon as Redis is.
- `/metrics`: Prometheus text (see qqavatar.metrics).

With `QQAVATAR_METRICS_TOKEN` set, `/metrics` and `/readyz` answer only a request with
`Authorization: Bearer <that token>` (401 otherwise); `/healthz` stays open, as a
liveness probe must.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import metrics
from ..store.db import select_one
from .bearer import bearer_is

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ..components import Runtime

log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store"}
OK = "ok"


def _runtime(request: Request) -> Runtime | None:
    return getattr(request.app.state, "runtime", None)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": OK}, headers=_NO_STORE)


def guarded(endpoint: Callable[[Request], Awaitable[Response]]
            ) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint behind `QQAVATAR_METRICS_TOKEN`, when it is set."""
    async def checked(request: Request) -> Response:
        runtime = _runtime(request)
        expected = runtime.settings.metrics_token if runtime is not None else None
        if expected and not bearer_is(request, expected):
            return JSONResponse({"error": "send Authorization: Bearer <QQAVATAR_METRICS_TOKEN>"},
                                401, headers={**_NO_STORE, "WWW-Authenticate": "Bearer"})
        return await endpoint(request)
    return checked


@guarded
async def metrics_endpoint(request: Request) -> Response:
    body, content_type = metrics.exposition(_runtime(request))
    return Response(body, media_type=content_type, headers=_NO_STORE)


class Readiness:
    """The checks of one worker."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.timeout = runtime.settings.ready_timeout

    async def check(self) -> tuple[bool, bool, dict[str, str]]:
        """(ready, degraded, the checks by name)."""
        database, redis = await asyncio.gather(self._database(), self._redis_state())
        upstream = upstream_state(self.runtime)
        checks = {"database": database, "redis": redis, "upstream": upstream}
        degraded = redis == "down" or upstream in ("open", "half-open")
        return database == OK, degraded, checks

    async def _database(self) -> str:
        engine = self.runtime.engine
        if engine is None:
            return "not configured"

        async def answers() -> None:
            async with engine.connect() as connection:
                await select_one(connection)

        return await self._probe("database", answers)

    async def _redis_state(self) -> str:
        """`ok` or `down`, as the link is after one PING (none while it waits to retry)."""
        link = self.runtime.redis
        if link is None:
            return "not configured"

        async def ping(client: Redis) -> bool:
            return bool(await client.ping())

        await link.run(ping, False)
        return link.state

    async def _probe(self, name: str, work: Callable[[], Awaitable[None]]) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                await work()
        except TimeoutError:
            log.warning("readiness: %s did not answer within %ss", name, self.timeout)
            return f"error: no answer within {self.timeout:g}s"
        except Exception as exc:  # noqa: BLE001 — whatever the failure, the answer is "not ready"
            # Details go to the log (redacted there); the public answer names only the kind.
            log.warning("readiness: %s failed: %s", name, str(exc).splitlines()[0] if str(exc)
                        else type(exc).__name__)
            return f"error: {type(exc).__name__}"
        return OK


def upstream_state(runtime: Runtime) -> str:
    """`closed`, `open`, `half-open` from the avatar pipeline's breaker, if it has one."""
    state = getattr(runtime.avatars, "circuit_state", None)
    return str(state) if state is not None else "unknown"


@guarded
async def readyz(request: Request) -> Response:
    runtime = _runtime(request)
    if runtime is None:
        return JSONResponse({"status": "starting", "checks": {}}, 503, headers=_NO_STORE)
    readiness: Readiness | None = getattr(request.app.state, "readiness", None)
    if readiness is None:
        readiness = request.app.state.readiness = Readiness(runtime)
    ready, degraded, checks = await readiness.check()
    return JSONResponse({"status": OK if ready else "unavailable", "degraded": degraded,
                         "checks": checks}, 200 if ready else 503, headers=_NO_STORE)


ROUTES: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]
