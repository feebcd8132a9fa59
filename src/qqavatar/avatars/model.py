"""The avatar value handed to the web layer: bytes plus everything an answer needs, precomputed."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Literal

Kind = Literal["user", "group"]
Key = tuple[Kind, str, int]  # (kind, number, size)


@dataclass(frozen=True, slots=True)
class Avatar:
    body: bytes            # image bytes exactly as served
    content_type: str      # validated against the decoded format
    is_default: bool       # upstream said X-Info notexist: Tencent's default image
    etag: str              # strong, quoted: '"<32 hex>"'
    b64_json: bytes        # base64 of body with "/" as "\/", as PHP's json_encode writes it
    expires_at: float      # time.monotonic() deadline
    max_age: int           # seconds left at creation, for Cache-Control


def make_avatar(body: bytes, content_type: str, *, is_default: bool, lifetime: int,
                now: float) -> Avatar:
    """Compute the per-avatar strings once, so every answer is a lookup and a join."""
    return Avatar(
        body=body,
        content_type=content_type,
        is_default=is_default,
        etag='"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"',
        b64_json=base64.b64encode(body).replace(b"/", b"\\/"),
        expires_at=now + lifetime,
        max_age=lifetime,
    )
