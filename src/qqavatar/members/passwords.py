"""Password hashing with scrypt (a slow, salted, memory-hard KDF from the standard library).

Stored form: `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`. The cost travels with
each hash, so raising it later keeps old hashes verifiable. Hashing costs about
16 MiB and tens of milliseconds: call the `a*` variants from async code, which
run it on a small pool of its own so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from concurrent.futures import ThreadPoolExecutor

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1   # OWASP's minimum for scrypt (16 MiB)
SALT_BYTES = 16
KEY_BYTES = 32
_MAX_MEMORY = 64 * 1024**2


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=_MAX_MEMORY, dklen=KEY_BYTES)


def hash_password(secret: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    return "$".join((SCHEME, str(N), str(R), str(P), _b64(salt),
                     _b64(_derive(secret, salt, N, R, P))))


def verify_password(secret: str, stored: str) -> bool:
    """True when `secret` hashes to `stored`; False for a wrong secret or a malformed hash."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != SCHEME:
            return False
        actual = _derive(secret, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(actual, base64.b64decode(expected))
    except ValueError:
        return False


# Hashing has its own few threads: on the default pool (image checks, `format=`
# conversions) a flood of logins would queue every other call's work behind 16 MiB KDFs.
POOL_THREADS = 2
_POOL = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="qqavatar-scrypt")


@functools.cache
def decoy() -> str:
    """What an unknown name is checked against, so that it costs what a wrong password costs."""
    return hash_password(secrets.token_hex(16))


async def ahash_password(secret: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_POOL, hash_password, secret)


async def averify_password(secret: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(
        _POOL, verify_password, secret, stored)


async def averify_decoy(secret: str) -> None:
    """A check that fails, as slow as a real one (for a name that does not exist)."""
    await asyncio.get_running_loop().run_in_executor(
        _POOL, lambda: verify_password(secret, decoy()))
