"""The httpx side both clients share: the request, the answer, and network failures."""

from __future__ import annotations

from typing import Any

import httpx

from .. import __version__
from .calls import Answer, Prepared
from .exceptions import TransportError

USER_AGENT = f"qqavatar-python/{__version__}"
# Failures before the request left: sending it again cannot do anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def client_options(base_url: str, timeout: float) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "timeout": timeout,
        "headers": {"User-Agent": USER_AGENT},
        "follow_redirects": True,
    }


def request_options(prepared: Prepared) -> dict[str, Any]:
    # "/" joins the base URL's path: http://host/prefix → http://host/prefix/
    return {"method": prepared.method, "url": "/", "params": prepared.query,
            "data": prepared.form}


def answer(response: httpx.Response) -> Answer:
    return Answer(response.status_code, response.headers, response.content)


def transport_error(exc: httpx.TransportError) -> TransportError:
    return TransportError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                          maybe_sent=not isinstance(exc, _NOT_SENT))
