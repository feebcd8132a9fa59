"""`X-Served-By`: which server answered, on every answer.

Behind a load balancer an answer (or a `/metrics` scrape) comes from whichever host it
picked; the header names it: `QQAVATAR_SERVER_NAME`, else the host name, reduced to
characters safe in a header. One name per process, set when the app is built (`install`):
the response paths add the precomputed pair, nothing per request.
"""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import Settings

HEADER = "x-served-by"
MAX_LENGTH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def server_name(configured: str | None) -> str:
    name = _UNSAFE.sub("-", configured or socket.gethostname())[:MAX_LENGTH]
    return name or "qqavatar"


def _pairs(name: str) -> tuple[tuple[str, str], tuple[bytes, bytes]]:
    return (HEADER, name), (HEADER.encode("ascii"), name.encode("ascii"))


# (str, str) for RSGI, (bytes, bytes) for ASGI; the host name until `install` runs.
SERVED_BY, SERVED_BY_RAW = _pairs(server_name(None))


def install(settings: Settings) -> None:
    """Name this process's answers after `settings.server_name` (else the host name)."""
    global SERVED_BY, SERVED_BY_RAW
    SERVED_BY, SERVED_BY_RAW = _pairs(server_name(settings.server_name))
