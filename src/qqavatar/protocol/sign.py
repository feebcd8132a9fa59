"""YesApi request signatures: md5 of the values sorted by name, plus the app secret.

The sort is PHP's `ksort` (SORT_REGULAR, PHP 8): PHP turns canonical integer
keys ("10") into ints, and compares numeric keys as numbers. For ordinary
parameter names this is plain byte order; the rule matters only for clients
that send numeric-looking names, and they must still verify.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import quote

from . import errors
from .numbers import client_int, php_number

_PHP_INT_KEY = re.compile(r"0|-?[1-9][0-9]{0,18}")
# Names joined by U+FFFF, each ASCII and starting with a letter or "_": none can be numeric.
_PLAIN_NAMES = re.compile(r"[A-Za-z_][\x00-\x7f]*(?:\uffff[A-Za-z_][\x00-\x7f]*)*")
_PHP_INT_MAX = 2**63 - 1


def _php_key(name: str) -> int | str:
    if _PHP_INT_KEY.fullmatch(name) and -_PHP_INT_MAX - 1 <= int(name) <= _PHP_INT_MAX:
        return int(name)
    return name


def _strcmp(a: str, b: str) -> int:
    left, right = a.encode("utf-8", "replace"), b.encode("utf-8", "replace")
    return (left > right) - (left < right)


def _compare_keys(a: str, b: str) -> int:
    left, right = _php_key(a), _php_key(b)
    if isinstance(left, int) and isinstance(right, int):
        return (left > right) - (left < right)
    number_a = float(left) if isinstance(left, int) else php_number(left)
    number_b = float(right) if isinstance(right, int) else php_number(right)
    if number_a is not None and number_b is not None:
        return (number_a > number_b) - (number_a < number_b)
    return _strcmp(str(left), str(right))


_sort_key = functools.cmp_to_key(_compare_keys)


def compute_sign(params: Mapping[str, str], secret: str) -> str:
    """The signature a YesApi SDK sends for these parameters (`sign` itself excluded)."""
    names = [name for name in params if name != "sign"]
    if _PLAIN_NAMES.fullmatch("\uffff".join(names)):  # one regex, not a test per name
        # No name can be numeric: PHP compares them as bytes, as Python's sort does.
        names.sort()
    else:
        names.sort(key=_sort_key)
    text = "".join(map(params.__getitem__, names)) + secret
    return hashlib.md5(text.encode("utf-8", "replace")).hexdigest().upper()


def verify_sign(params: Mapping[str, str], secret: str, sign: str) -> bool:
    """Constant-time check; the hex may come in either case."""
    expected = compute_sign(params, secret).encode("ascii")
    return hmac.compare_digest(expected, sign.upper().encode("utf-8", "replace"))


# --- the stronger scheme an app may opt into (docs/security.md, "The YesApi sign") ----------
#
# The YesApi sign above joins bare values: `qq=376741929&return_data=1` and
# `qq=37674192&return_data=91&zz=` concatenate to the same text. It carries no time, and in
# /api/… URLs the service name is no parameter, so one sign serves every service. Apps set
# to HMAC_SHA256 sign instead: HMAC-SHA256 under the app secret of a canonical text with
# separators, the service's canonical name, a `timestamp` within WINDOW seconds of the
# server's clock and a `nonce` the server refuses to see twice (limits/nonces.py).

YESAPI = "yesapi"
HMAC_SHA256 = "hmac-sha256"
SCHEMES = (YESAPI, HMAC_SHA256)
WINDOW = 300  # seconds a timestamp may differ from the server's clock, either way
_CANONICAL_HEAD = "QQAVATAR-HMAC-SHA256"
_NOT_SIGNED = frozenset({"sign", "s", "service"})  # the service is its own line
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP_DIGITS = 12


def canonical_text(service: str, params: Mapping[str, str]) -> bytes:
    """`QQAVATAR-HMAC-SHA256\\n<service>\\n<k>=<v>&…`: pairs sorted by name, names and
    values percent-encoded (RFC 3986 unreserved kept), so no two requests share a text."""
    pairs = sorted((quote(name, safe="-_.~"), quote(value, safe="-_.~"))
                   for name, value in params.items() if name not in _NOT_SIGNED)
    query = "&".join(f"{name}={value}" for name, value in pairs)
    return f"{_CANONICAL_HEAD}\n{service}\n{query}".encode()


def compute_strong_sign(service: str, params: Mapping[str, str], secret: str) -> str:
    """The HMAC-SHA256 sign (lowercase hex) of a call to `service` (its canonical name)."""
    return hmac.new(secret.encode("utf-8"), canonical_text(service, params),
                    hashlib.sha256).hexdigest()


def check_strong_sign(service: str, params: Mapping[str, str], secret: str,
                      sign: str | None, now: float) -> None:
    """Raise the answer for a call that fails the scheme; the nonce is checked apart."""
    if sign is None:
        raise errors.missing("sign")
    for name in ("timestamp", "nonce"):
        if name not in params:
            raise errors.missing(name)
    timestamp = client_int(params["timestamp"], max_digits=_TIMESTAMP_DIGITS)
    if timestamp is None:
        raise errors.client_error(400, "参数timestamp应该是Unix时间戳（秒）")
    if _NONCE.fullmatch(params["nonce"]) is None:
        raise errors.client_error(400, "参数nonce应该是16到64位字母、数字、-或_")
    if abs(now - timestamp) > WINDOW:
        raise errors.client_error(409, f"签名已过期：timestamp与服务器时间相差超过{WINDOW}秒")
    expected = compute_strong_sign(service, params, secret).encode("ascii")
    if not hmac.compare_digest(expected, sign.lower().encode("utf-8", "replace")):
        raise errors.bad_sign()
