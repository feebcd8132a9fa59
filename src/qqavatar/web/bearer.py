"""`Authorization: Bearer <token>`, compared in constant time (dashboard API, /metrics)."""

from __future__ import annotations

import hmac

from starlette.requests import Request


def bearer_is(request: Request, expected: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
