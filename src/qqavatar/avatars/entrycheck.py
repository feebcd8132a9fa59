"""Is a copy read back from a cache tier (disk, Redis) still fit to serve as an avatar?

Both tiers hold what we wrote, but they are read from places others may write to: a Redis
shared on a network, a directory. The ETag checksum catches damage, not a forgery made
with a correct checksum. So a copy is served only when it would pass the checks an
upstream answer passes: an image type we serve, the body's magic bytes that type's,
the content type exactly the one we would send for it (nothing more on the header line),
within the size bounds. Otherwise it is treated as absent: the avatar is fetched again,
and the fresh copy replaces it in the tier.

What is not repeated is Pillow decoding the whole image (0.2-5 ms): the disk tier reads
in a few microseconds on the event loop, and a body whose first bytes are an image's is
served as that image type (with `nosniff`), never as a page or a script.
"""

from __future__ import annotations

import logging
from typing import Protocol, TypeVar

from .images import FORMATS, MAX_SIDE, MEDIA_TYPES

log = logging.getLogger(__name__)

# A stored copy larger than this is refused even when no upstream bound is known: qlogo's
# largest avatars are ~100 KB, and upstream_max_bytes defaults to 2 MiB.
STORED_MAX_BYTES = 16 * 1024 * 1024

_READ_FORMATS = frozenset(name.lower() for name in FORMATS)  # what an upstream may send


class StoredImage(Protocol):
    @property
    def body(self) -> bytes: ...
    @property
    def content_type(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def size(self) -> int: ...


Stored = TypeVar("Stored", bound=StoredImage)


def sniff(body: bytes) -> str | None:
    """The image format the magic bytes at the start of `body` say, or None."""
    if body.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if body.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if body.startswith(b"RIFF") and body[8:12] == b"WEBP":
        return "webp"
    if body.startswith(b"BM"):
        return "bmp"
    return None


def entry_fault(entry: StoredImage, max_bytes: int = STORED_MAX_BYTES) -> str | None:
    """Why `entry` must not be served, or None when it may be."""
    length = len(entry.body)
    if not 0 < length <= max_bytes:
        return f"{length} bytes, not 1 to {max_bytes}"
    found = sniff(entry.body)
    if found is None or found not in _READ_FORMATS:
        return f"no image magic bytes (starts {entry.body[:8]!r})"
    if entry.format != found or entry.content_type != MEDIA_TYPES[found]:
        return (f"stored as {entry.format!r} {entry.content_type!r}"[:120]
                + f", the bytes are {found}")
    if not 0 < entry.size <= MAX_SIDE:
        return f"pixel size {entry.size}, not 1 to {MAX_SIDE}"
    return None


def checked(entry: Stored | None, max_bytes: int = STORED_MAX_BYTES,
            where: str = "cache tier") -> Stored | None:
    """`entry` when it may be served; None (and a warning) when it may not."""
    if entry is None:
        return None
    fault = entry_fault(entry, max_bytes)
    if fault is None:
        return entry
    log.warning("%s: refusing a stored copy: %s", where, fault)
    return None
