"""The values the client returns."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["user", "group"]

_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/bmp": "bmp",
}


def extension_for(content_type: str) -> str:
    """A file extension for an image type: `image/jpeg` → `jpg`; unknown types → `img`."""
    media = content_type.split(";", 1)[0].strip().lower()
    return _EXTENSIONS.get(media) or "img"


@dataclass(frozen=True, slots=True)
class Image:
    """An avatar as image bytes (output=1)."""

    kind: Kind
    number: str
    size: int              # pixels served (X-Avatar-Size when the server says, else as asked)
    content: bytes
    content_type: str
    is_default: bool       # the number has no avatar of its own: Tencent's default image
    etag: str | None = None
    cache: str | None = None  # X-Cache: HIT, MISS, STALE, REVALIDATED, when the server says

    @property
    def extension(self) -> str:
        return extension_for(self.content_type)

    def __repr__(self) -> str:  # never dump the bytes
        return (f"Image(kind={self.kind!r}, number={self.number!r}, size={self.size}, "
                f"content_type={self.content_type!r}, bytes={len(self.content)}, "
                f"is_default={self.is_default}, etag={self.etag!r})")


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """An avatar as base64 text in the envelope (output=0), with the envelope's metadata."""

    kind: Kind
    number: str
    size: int
    base64: str            # `data.img`, no `data:` prefix
    content_type: str
    is_default: bool
    t: int                 # the envelope's server time `_t`
    data: Mapping[str, Any] = field(default_factory=dict)  # the whole `data` object

    @property
    def content(self) -> bytes:
        return base64.b64decode(self.base64, validate=True)

    @property
    def extension(self) -> str:
        return extension_for(self.content_type)

    @property
    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{self.base64}"

    def __repr__(self) -> str:
        return (f"EncodedImage(kind={self.kind!r}, number={self.number!r}, size={self.size}, "
                f"content_type={self.content_type!r}, base64_chars={len(self.base64)}, "
                f"is_default={self.is_default})")


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in member of the app (App.User.Login): sent as `uuid` + `token`."""

    uuid: str
    token: str

    def __repr__(self) -> str:  # the token is a credential
        return f"Session(uuid={self.uuid!r}, token='…')"
