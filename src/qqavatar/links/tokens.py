"""Private link tokens: an avatar request sealed under its app's link key.

A token is `base64url(version ‖ key_id ‖ AES-SIV(plaintext))`, without padding:

- `version` (1 byte) names this layout, so it can change without breaking old links silently;
- `key_id` (8 bytes) is derived from the app's link key (HKDF), so the server finds the key
  without the token naming the app: it says nothing about the `app_key` to anyone who
  lacks the key, changes when the key is rotated, and vanishes with a deleted app's key;
- AES-SIV (RFC 5297, from `cryptography`) is a deterministic AEAD: the same request gives
  the same token (browsers and CDNs can cache it), and any change to any byte fails the
  tag check. `version ‖ key_id` and the `app_key` are its associated data.
- The plaintext (the avatar kind and the avatar service's parameters as text) is padded to
  a multiple of `PLAIN_BLOCK`, so the token's length does not tell the number's length.

The `app_key` itself is never in the token, in clear or sealed: the key id finds the app.

This module does no I/O; `registry` keeps the keys.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:  # only a type here: the CLI need not import the avatar pipeline
    from ..avatars import Kind

TOKEN_VERSION = 1
KEY_BYTES = 32            # the stored per-app link key
KEY_ID_BYTES = 8
SIV_KEY_BYTES = 64        # AES-256-SIV
# Every plaintext of today's parameters, the longest number with `format` and `default`
# included, fits in one block, so all tokens have the same length.
PLAIN_BLOCK = 64
_HEADER_BYTES = 1 + KEY_ID_BYTES
_KDF_INFO = b"qqavatar private link v1"

_KIND_CODES: dict[Kind, str] = {"user": "u", "group": "g"}
_CODE_KINDS: dict[str, Kind] = {code: kind for kind, code in _KIND_CODES.items()}
_FIELD_SEP = "\x1f"       # ASCII unit separator: never part of a parameter's text
_PAD = b"\x00"


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a link shows: an avatar kind and the avatar service's parameters, as text.

    `params` are (name, text) pairs sorted by name, e.g. `(("qq", "10001"), ("size", "100"))`;
    whatever parameters the avatar services grow (`format`, `default`) travel here unchanged.
    """

    kind: Kind
    params: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, kind: Kind, params: dict[str, str]) -> LinkTarget:
        for name, text in params.items():
            if not name or not name.isascii() or "=" in name or _FIELD_SEP in name:
                raise ValueError(f"unusable parameter name {name!r}")
            if _FIELD_SEP in text or "\x00" in text:
                raise ValueError(f"unusable text for parameter {name}")
        return cls(kind, tuple(sorted(params.items())))

    def get(self, name: str) -> str | None:
        return dict(self.params).get(name)


class LinkKey:
    """One app's link key, with the AES-SIV key and the key id derived from it."""

    __slots__ = ("_siv", "key_id", "secret")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"a link key is {KEY_BYTES} bytes, got {len(secret)}")
        derived = HKDF(SHA256(), SIV_KEY_BYTES + KEY_ID_BYTES, salt=None,
                       info=_KDF_INFO).derive(secret)
        self.secret = secret
        self.key_id = derived[SIV_KEY_BYTES:]
        self._siv = AESSIV(derived[:SIV_KEY_BYTES])

    @classmethod
    def generate(cls) -> LinkKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    def seal(self, app_key: str, target: LinkTarget) -> str:
        header = bytes((TOKEN_VERSION,)) + self.key_id
        sealed = self._siv.encrypt(_encode(target), [header, app_key.encode("ascii")])
        return base64.urlsafe_b64encode(header + sealed).rstrip(b"=").decode("ascii")

    def unseal(self, app_key: str, raw: bytes) -> LinkTarget | None:
        """The target sealed in `raw` (a decoded token) for `app_key`, or None if not ours."""
        header, sealed = raw[:_HEADER_BYTES], raw[_HEADER_BYTES:]
        try:
            plain = self._siv.decrypt(sealed, [header, app_key.encode("ascii")])
        except InvalidTag:
            return None
        return _decode(plain)


@dataclass(frozen=True, slots=True)
class OpenedToken:
    """A token's parts before decryption: which key to try, and the bytes to try it on."""

    key_id: bytes
    raw: bytes


def split_token(text: str) -> OpenedToken | None:
    """Decode a token's text; None unless it is canonical base64url of a well-formed token.

    Canonical only: base64 lets a few spellings decode to the same bytes (the unused low
    bits of the last character), and a link must have exactly one spelling.
    """
    if not text.isascii() or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        return None
    if len(raw) < _HEADER_BYTES + 16 + PLAIN_BLOCK or raw[0] != TOKEN_VERSION:
        return None
    return OpenedToken(raw[1:_HEADER_BYTES], raw)


def _encode(target: LinkTarget) -> bytes:
    fields = [_KIND_CODES[target.kind], *(f"{name}={text}" for name, text in target.params)]
    plain = _FIELD_SEP.join(fields).encode("utf-8")
    return plain + _PAD * (-len(plain) % PLAIN_BLOCK)


def _decode(plain: bytes) -> LinkTarget | None:
    # Authenticated already, so only our own `_encode` made it; stay strict all the same.
    try:
        fields = plain.rstrip(_PAD).decode("utf-8").split(_FIELD_SEP)
    except UnicodeDecodeError:
        return None
    kind = _CODE_KINDS.get(fields[0])
    if kind is None:
        return None
    params: dict[str, str] = {}
    for field in fields[1:]:
        name, sep, text = field.partition("=")
        if not sep:
            return None
        params[name] = text
    return LinkTarget(kind, tuple(sorted(params.items())))
