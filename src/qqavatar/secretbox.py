"""App secrets encrypted at rest (`QQAVATAR_SECRET_KEY`).

The operator's key is any long random string; HKDF-SHA256 turns it into a 256-bit AES-GCM
key, so its format does not matter. A sealed secret is stored as text:

    enc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>

- `enc:v1:` marks the row as sealed (plaintext secrets are [A-Za-z0-9] only, so they can
  never start with it) and versions the format.
- The key id is 8 hex digits derived from the key by HKDF with its own label: it tells
  which key sealed a row (rotation, a clear "wrong key" error) and reveals nothing of it.
- The app_key is the associated data: a sealed secret copied onto another app's row
  does not open there.

Private-link keys (32 random bytes) are sealed the same way, as bytes:
`enc:v1:<key id>:` then nonce ‖ ciphertext ‖ tag (76 bytes), with their own associated data.

Rows written before a key was configured stay plaintext and keep working;
`qqavatar app encrypt-secrets` seals them (and, with `--old-key`, re-seals rows of a
previous key). Without a configured key a sealed row cannot be read: the server refuses to
start rather than sign with garbage.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import ConfigError

PREFIX = "enc:v1:"
MIN_KEY_LENGTH = 32
KEY_HINT = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
_NONCE_BYTES = 12
_PREFIX_BYTES = PREFIX.encode("ascii")
_KEY_ID_CHARS = 8
_SALT = b"qqavatar secretbox"


class SecretKeyError(ConfigError):
    """A sealed secret cannot be opened: no key configured, or not the key that sealed it.
    A configuration error: the CLI ends with one line and exit status 2."""


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def sealed_key_id(stored: str) -> str | None:
    """The key id of a sealed value, None for plaintext."""
    if not is_sealed(stored):
        return None
    return stored[len(PREFIX):].partition(":")[0]


def sealed_key_id_of_bytes(stored: bytes) -> str | None:
    """The key id of a value sealed by `SecretBox.seal_bytes`, None for raw bytes."""
    if not stored.startswith(_PREFIX_BYTES):
        return None
    return stored[len(_PREFIX_BYTES):len(_PREFIX_BYTES) + _KEY_ID_CHARS].decode("ascii", "replace")


def check_key(key: str) -> str:
    """`key` if long enough to be a real key; ValueError (naming no part of it) otherwise."""
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(f"must be at least {MIN_KEY_LENGTH} characters of random text "
                         f"({KEY_HINT})")
    return key


def _derive(key: str, label: bytes, length: int) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=label)
    return hkdf.derive(key.encode("utf-8"))


class SecretBox:
    """Seals and opens app secrets under one operator key."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, key: str) -> None:
        check_key(key)
        self._aead = AESGCM(_derive(key, b"app_secret aes-256-gcm v1", 32))
        self.key_id = _derive(key, b"key id v1", 4).hex()

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"  # never the key

    def seal(self, secret: str, app_key: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), app_key.encode("ascii"))
        blob = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{PREFIX}{self.key_id}:{blob}"

    def open(self, stored: str, app_key: str) -> str:
        """The secret in `stored`: plaintext passes through; SecretKeyError if it won't open."""
        if not is_sealed(stored):
            return stored
        key_id, _, blob = stored[len(PREFIX):].partition(":")
        if key_id != self.key_id:
            raise SecretKeyError(
                f"the app_secret of app {app_key[:8]}… is encrypted with key id {key_id}, but "
                f"QQAVATAR_SECRET_KEY has key id {self.key_id}: set the key it was encrypted "
                "with (after a rotation: `qqavatar app encrypt-secrets --old-key -`), or delete "
                "the app (`qqavatar app delete`) if no one has that key")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                       app_key.encode("ascii"))
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretKeyError(f"the encrypted app_secret of app {app_key[:8]}… is damaged or "
                                 "was moved from another app") from None
        return plain.decode("utf-8")

    def seal_bytes(self, data: bytes, context: bytes) -> bytes:
        """`data` sealed; `context` (associated data) must be given again to open it."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, data, context)
        return _PREFIX_BYTES + self.key_id.encode("ascii") + b":" + nonce + sealed

    def open_bytes(self, stored: bytes, context: bytes) -> bytes:
        """What `seal_bytes` sealed; SecretKeyError for another key or damaged bytes."""
        key_id = sealed_key_id_of_bytes(stored)
        if key_id != self.key_id:
            raise SecretKeyError(f"a link key is encrypted with key id {key_id}, but "
                                 f"QQAVATAR_SECRET_KEY has key id {self.key_id}")
        raw = stored[len(_PREFIX_BYTES) + _KEY_ID_CHARS + 1:]
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context)
        except InvalidTag:
            raise SecretKeyError("an encrypted link key is damaged or was moved from another "
                                 "app") from None


@functools.lru_cache(maxsize=8)
def box_for(key: str | None) -> SecretBox | None:
    """The box for a configured key (None: secrets stay plaintext). Cached: HKDF per key once."""
    return None if key is None else SecretBox(key)


def open_secret(stored: str, app_key: str, box: SecretBox | None) -> str:
    """What the request path needs: the usable secret, or SecretKeyError."""
    if box is not None:
        return box.open(stored, app_key)
    if is_sealed(stored):
        raise SecretKeyError(
            f"app secrets are encrypted (key id {sealed_key_id(stored)}) but QQAVATAR_SECRET_KEY "
            "is not set: set the key they were encrypted with")
    return stored
