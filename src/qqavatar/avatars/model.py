"""The avatar value handed to the web layer: its bytes, once, and what describes them.

One copy of the image per avatar and little else: what a JSON answer needs (base64, the
data JSON's md5 state) is derived from `body` by the handlers, in a small hot tier of their
own (handlers/digests.py), and an image answer's headers are made per answer from shared
pieces (headers.py), so a cache of many avatars holds little more than their bytes.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from typing import Any, Literal

from .failures import CacheState

Kind = Literal["user", "group"]
# (kind, number, size, variant). The variant is "" for the upstream's own image, a format
# name ("webp") for a transcoded copy, "identicon.<format>" for a generated default.
Key = tuple[Kind, str, int, str]


@dataclass(frozen=True, slots=True)
class Avatar:
    body: bytes            # image bytes exactly as served
    content_type: str      # validated against the decoded format
    is_default: bool       # the number has no avatar of its own (qlogo said X-Info notexist)
    etag: str              # strong, quoted: '"<32 hex>"'
    expires_at: float      # time.monotonic() deadline
    max_age: int           # seconds of freshness it was given (0: not to be cached)
    size: int = 0          # pixel size actually served (HD fallback: smaller than asked)
    format: str = ""       # short format name: jpeg, png, gif, webp, bmp, avif
    modified_at: int = 0   # Unix time for Last-Modified: the upstream's, or our first fetch
    source: str = ""       # a transcoded or generated copy: ETag of the original it came from
    revalidated: bool = False  # refreshed in the background, not yet answered with


@dataclass(frozen=True, slots=True)
class Served:
    """An avatar with where it came from (`X-Cache`) and whether the upstream was asked."""

    avatar: Avatar
    cache: CacheState
    upstream_fetch: bool = False


@dataclass(frozen=True, slots=True)
class Source:
    """The cached avatar a hit was answered from, and how it was looked up."""

    lookup: tuple[Any, ...]        # AvatarService.cached's arguments
    avatar: Avatar                    # what that lookup returned
    until: float                      # monotonic: past this the answer would differ (max-age)
    key: Key | None = None            # the cache key, when the lookup returns that entry as is


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def make_avatar(body: bytes, content_type: str, *, is_default: bool, lifetime: int,
                now: float, size: int = 0, format: str = "", modified_at: int = 0,
                source: str = "", etag: str | None = None,
                expires_at: float | None = None) -> Avatar:
    """Fresh for `lifetime` seconds from `now`, unless `expires_at` says otherwise (a copy
    derived from another avatar, or one read back from disk, keeps its original's)."""
    return Avatar(
        body=body,
        content_type=sys.intern(content_type),  # a handful of values: one copy each
        is_default=is_default,
        etag=etag_of(body) if etag is None else etag,
        expires_at=now + lifetime if expires_at is None else expires_at,
        max_age=lifetime,
        size=size,
        format=sys.intern(format),
        modified_at=modified_at,
        source=source,
    )
