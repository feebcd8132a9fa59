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

from .numbers import php_number

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
