"""The YesApi envelope `{"ret","data","msg","_t","_auth"}`, JSONP and `return_data`.

`data` arrives already encoded, so `_auth` hashes exactly the bytes the body
carries: `_auth = md5(<data JSON> + str(_t) + app_secret)`. It may arrive in pieces
(`Data`), joined once into the body: an avatar's base64 is then copied once per answer.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from .phpjson import encode_str

CALLBACK_PATTERN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.]{0,63}")
EMPTY_DATA = b"{}"
# The data JSON, whole or as pieces to be concatenated.
Data = bytes | tuple[bytes, ...]


class Digest(Protocol):
    """A hashlib md5 object."""

    def copy(self) -> Digest: ...
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def auth(data_json: Data, t: int, secret: str, prehashed: Digest | None = None) -> str:
    """`prehashed`: an md5 state that has consumed exactly `data_json` (it is not changed)."""
    if prehashed is not None:
        digest = prehashed.copy()
    elif isinstance(data_json, bytes):
        digest = hashlib.md5(data_json)
    else:
        digest = hashlib.md5()
        for piece in data_json:
            digest.update(piece)
    digest.update(str(t).encode("ascii"))
    digest.update(secret.encode("utf-8"))
    return digest.hexdigest()


def envelope(ret: int, data_json: Data, msg: str, t: int, secret: str | None,
             prehashed: Digest | None = None) -> bytes:
    """The full body; `_auth` only when the app (its secret) is known."""
    parts = [b'{"ret":', str(ret).encode("ascii"), b',"data":']
    if isinstance(data_json, bytes):
        parts.append(data_json)
    else:
        parts += data_json
    parts += [
        b',"msg":', encode_str(msg).encode("utf-8"),
        b',"_t":', str(t).encode("ascii"),
    ]
    if secret is not None:
        parts += [b',"_auth":"', auth(data_json, t, secret, prehashed).encode("ascii"), b'"']
    parts.append(b"}")
    return b"".join(parts)


def is_valid_callback(callback: str) -> bool:
    return CALLBACK_PATTERN.fullmatch(callback) is not None


def jsonp(callback: str, body: bytes) -> bytes:
    """`cb(<envelope>)`; the callback must have passed `is_valid_callback`."""
    return callback.encode("ascii") + b"(" + body + b")"
