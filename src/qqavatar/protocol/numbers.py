"""Numbers read from client text, bounded: the one way the server turns what a client sent
(a parameter, a header, a form field) into a number.

Python's `int()` refuses strings of more than 4 300 digits with a ValueError, and `isdigit()`
accepts characters `int()` does not read ("²", "①"): client text that reached either one
unchecked was a 500. `client_int` takes ASCII digits only and at most `MAX_DIGITS` of them;
anything else is None, for the caller to refuse (or to take its default) in its own words.
`php_number` reads a numeric string as PHP 8 does (for PhalApi's loose comparisons); a
float never raises, whatever the length (past its range it is `inf`, as PHP's INF).
"""

from __future__ import annotations

import re

# Past 10**18 no count, size, length or day number of ours means anything; and an int of
# this many digits is cheap to build and to compare.
MAX_DIGITS = 18

# PHP 8's numeric strings: optional surrounding whitespace, sign, decimal or exponent.
_PHP_NUMERIC = re.compile(
    r"[ \t\n\r\v\f]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\v\f]*"
)


def client_int(text: str | bytes, *, max_digits: int = MAX_DIGITS) -> int | None:
    """The value of `text` if it is 1 to `max_digits` ASCII digits (leading zeros allowed,
    no sign, no spaces); None for anything else."""
    if not 0 < len(text) <= max_digits or not text.isdigit() or not text.isascii():
        return None
    return int(text)


def php_number(value: str) -> float | None:
    """The number PHP reads from a numeric string, or None when PHP calls it non-numeric."""
    if _PHP_NUMERIC.fullmatch(value) is None:
        return None
    return float(value)


_INT64 = 2**63


def php_json_int(text: str) -> int | float:
    """A JSON integer as PHP's json_decode reads it: an int while it fits in 64 bits, past
    that a float (Python's own json would build an int of any length, and refuse 4 301+
    digits with a ValueError)."""
    if len(text) <= 20:  # 19 digits and a sign
        value = int(text)
        if -_INT64 <= value < _INT64:
            return value
    return float(text)
