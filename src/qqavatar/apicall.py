"""Plain values that travel through one API call: the request, the call, the result, the reply."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .avatars.model import Source
from .catalog import Service
from .protocol.envelope import Data, Digest


class AppLike(Protocol):
    @property
    def app_key(self) -> str: ...
    @property
    def app_secret(self) -> str: ...
    @property
    def sign_required(self) -> bool: ...
    @property
    def sign_scheme(self) -> str: ...


@dataclass(slots=True)
class ApiRequest:
    """What the web layer hands over: no HTTP parsing is left to do after this."""

    service: str                      # as named by the URL or `service`/`s`; "" → Site.Index
    params: dict[str, str]
    headers: Mapping[str, str] = field(default_factory=dict)  # lowercase names
    client: str | None = None         # peer address
    method: str = "GET"
    scheme: str = "http"              # as the client sees it (uvicorn applies proxy headers)
    # The address the connection reached: ASGI's (host, port) or RSGI's "host:port".
    server: tuple[str, int] | str | None = None


@dataclass(slots=True)
class Call:
    """An authenticated call to one service, its parameters parsed by the service's rules."""

    service: Service
    values: dict[str, Any]
    request: ApiRequest
    app: AppLike | None
    image_mode: bool
    member: str | None = None         # uuid, set by the session guard when the pair holds


@dataclass(slots=True)
class ApiReply:
    status: int
    content_type: str
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    kept: Kept | None = None          # set when the identical request may get this again


@dataclass(slots=True)
class Result:
    """What a handler answers: `data` for the envelope, or a complete `reply` (an image)."""

    data: Data = b"{}"                # the data JSON, or its pieces (joined once into the body)
    err_code: int = 0
    http_status: int | None = None    # the status of an image-mode failure (502, 504, 404 …)
    reply: ApiReply | None = None
    cache: str | None = None          # where an avatar came from: HIT, MISS, STALE, REVALIDATED
    upstream_fetch: bool = False
    upstream_ms: float | None = None  # time spent waiting for qlogo (cache misses only)
    headers: tuple[tuple[str, str], ...] = ()  # extra headers of an envelope answer (X-Cache)
    data_md5: Digest | None = None    # md5 state of `data`, kept per avatar: `_auth` reuses it
    source: Source | None = None      # a cached hit: where from (its answer may be kept)


@dataclass(slots=True)
class Outcome:
    """One answered call, as statistics and metrics see it."""

    service: str                      # canonical name, or the unknown name as asked
    app_key: str | None               # a known app only
    ret: int
    err_code: int = 0
    cache: str | None = None
    upstream_fetch: bool = False
    member: str | None = None         # uuid of a member whose session held
    upstream_ms: float | None = None  # time spent waiting for qlogo (cache misses only)
    duration: float = 0.0             # seconds from the gateway taking the call to its answer


@dataclass(slots=True)
class Kept:
    """A cached hit's answer, for the identical request while nothing it came from changes:
    the same app record, the same cached avatar, the same second (`Gateway.replay`)."""

    call: Call
    source: Source
    outcome: Outcome                  # reused for every replay: observers must not keep it
    second: int                       # the envelope's `_t` (wall clock) when it was made
    replays: tuple[Callable[[Call], None], ...] = ()  # the guards' per-call work (counting)
