"""A request body read as PhalApi reads `php://input`: `json_decode($raw, true)`, used only
when it gives a non-empty array, whatever the Content-Type.

- Not JSON, or JSON that is not an object (`null`, `[]`, `[1,2]`, `"abc"`, `5`, `{bad`): None,
  and the body counts for nothing (the caller may still read a real form from it).
- PHP's own refusals too: NaN/Infinity, a lone UTF-16 surrogate (`"\\ud800"`), invalid UTF-8.
- Member values become the text PHP's string cast gives (`true` → "1", `false` → "",
  `1e20` → "1.0E+20"); `null` is None: the parameter is absent, even if the query had it
  (`array_merge` overwrites it, `isset` says no); an array or object is `NESTED`, refused
  only by a rule that reads it.
"""

from __future__ import annotations

import json
import math

from .numbers import php_json_int
from .params import NESTED


def php_json_params(body: bytes) -> dict[str, str | None] | None:
    """The members of a JSON object body as parameter text (None: absent); None when the
    body is not a non-empty JSON object."""
    try:
        decoded = json.loads(body.decode("utf-8"), parse_int=php_json_int,
                             parse_constant=_not_php_json)
        if b"\\u" in body:  # an escape may be a lone surrogate, which PHP refuses
            json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        return None
    if not isinstance(decoded, dict) or not decoded:
        return None
    return {name: _php_text(value) for name, value in decoded.items()}


def _not_php_json(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON to PHP")


def _php_text(value: object) -> str | None:
    """PHP's (string) cast of a decoded JSON value; None stays None."""
    if value is None or isinstance(value, str):
        return value
    if value is True:
        return "1"
    if value is False:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return php_float_text(value)
    return NESTED


def php_float_text(value: float) -> str:
    """`(string)$float` with PHP's default precision (14 significant digits)."""
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    text = f"{value:.14G}"
    mantissa, exponent_mark, exponent = text.partition("E")
    if not exponent_mark:
        return text
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{exponent[0]}{exponent[1:].lstrip('0') or '0'}"
