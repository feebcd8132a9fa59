"""`Authorization: Bearer <token>`, compared in constant time (dashboard API, /metrics)."""

from __future__ import annotations

import hmac

from starlette.requests import Request


def tokens_equal(given: str, expected: str) -> bool:
    """Constant time, whatever the text (lone surrogates included)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


def bearer_is(request: Request, expected: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and tokens_equal(given.strip(), expected)
