"""The YesApi envelope `{"ret","data","msg","_t","_auth"}`, JSONP and `return_data`.

`data` arrives already encoded, so `_auth` hashes exactly the bytes the body
carries: `_auth = md5(<data JSON> + str(_t) + app_secret)`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from .phpjson import dumps, encode_str

CALLBACK_PATTERN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.]{0,63}")
EMPTY_DATA = b"{}"


class Digest(Protocol):
    """A hashlib md5 object."""

    def copy(self) -> Digest: ...
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def auth(data_json: bytes, t: int, secret: str, prehashed: Digest | None = None) -> str:
    """`prehashed`: an md5 state that has consumed exactly `data_json` (it is not changed)."""
    digest = hashlib.md5(data_json) if prehashed is None else prehashed.copy()
    digest.update(str(t).encode("ascii"))
    digest.update(secret.encode("utf-8"))
    return digest.hexdigest()


def envelope(ret: int, data_json: bytes, msg: str, t: int, secret: str | None,
             prehashed: Digest | None = None) -> bytes:
    """The full body; `_auth` only when the app (its secret) is known."""
    parts = [
        b'{"ret":', str(ret).encode("ascii"),
        b',"data":', data_json,
        b',"msg":', encode_str(msg).encode("utf-8"),
        b',"_t":', str(t).encode("ascii"),
    ]
    if secret is not None:
        parts += [b',"_auth":"', auth(data_json, t, secret, prehashed).encode("ascii"), b'"']
    parts.append(b"}")
    return b"".join(parts)


def data_json(data: dict[str, object]) -> bytes:
    return dumps(data)


def is_valid_callback(callback: str) -> bool:
    return CALLBACK_PATTERN.fullmatch(callback) is not None


def jsonp(callback: str, body: bytes) -> bytes:
    """`cb(<envelope>)`; the callback must have passed `is_valid_callback`."""
    return callback.encode("ascii") + b"(" + body + b")"
