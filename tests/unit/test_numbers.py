"""Numbers from client text (protocol/numbers.py) and JSON bodies as PHP reads them
(protocol/jsonbody.py). The PHP columns are what `php -r 'echo (string)$x;'` printed (PHP 8.2)."""

from __future__ import annotations

import pytest

from qqavatar.protocol.jsonbody import php_float_text, php_json_params
from qqavatar.protocol.numbers import MAX_DIGITS, client_int, php_json_int, php_number
from qqavatar.protocol.params import NESTED


@pytest.mark.parametrize(("text", "expected"), [
    ("7", 7), ("007", 7), (b"1024", 1024), ("9" * MAX_DIGITS, int("9" * MAX_DIGITS)),
    ("9" * (MAX_DIGITS + 1), None), ("4" * 4301, None), ("²", None), ("①", None),
    ("١٢", None), ("", None), ("-1", None), ("+1", None), (" 1", None), ("1.0", None),
    (b"\xb2", None),
])
def test_client_int_reads_ascii_digits_only_and_bounded(text: str | bytes,
                                                        expected: int | None) -> None:
    assert client_int(text) == expected


def test_php_number_never_raises_on_long_digit_strings() -> None:
    assert php_number("4" * 5000) == float("inf")
    assert php_number(" 40.0 ") == 40.0 and php_number("4O") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("9223372036854775807", 9223372036854775807), ("-9223372036854775808", -2**63),
    ("9223372036854775808", 9.223372036854776e18), ("1" * 5000, float("inf")),
])
def test_json_integers_past_64_bits_are_floats(text: str, expected: float) -> None:
    value = php_json_int(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("value", "php"), [
    (0.1, "0.1"), (1 / 3, "0.33333333333333"), (1e14, "1.0E+14"), (1e13, "10000000000000"),
    (123456789012345.0, "1.2345678901234E+14"), (0.0001, "0.0001"), (0.00001, "1.0E-5"),
    (-0.0, "-0"), (1e20, "1.0E+20"), (40.0, "40"), (1.5, "1.5"), (-2.5e-10, "-2.5E-10"),
    (99999999999999.9, "1.0E+14"), (float("inf"), "INF"), (float("-inf"), "-INF"),
])
def test_float_text_is_phps(value: float, php: str) -> None:
    assert php_float_text(value) == php


def test_json_members_become_php_text() -> None:
    body = b'{"t": true, "f": false, "n": null, "i": 40, "x": 40.0, "s": "a", "a": [1], "o": {}}'
    assert php_json_params(body) == {"t": "1", "f": "", "n": None, "i": "40", "x": "40",
                                     "s": "a", "a": NESTED, "o": NESTED}


@pytest.mark.parametrize("body", [b"null", b"[]", b"[1,2]", b"true", b'"abc"', b"5", b"{}",
                                  b"{bad", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": "\\udc00"}',
                                  b"\xef\xbb\xbf{}", b'{"a": "\xff"}', b"[" * 100_000])
def test_bodies_that_are_not_a_json_object_with_members_count_for_nothing(body: bytes) -> None:
    """PHP refuses all of these but `[]`, `[1,2]`, `true`, `"abc"`, `5` and `{}`, which are
    not a non-empty array, or (`[1,2]`) keys 0 and 1 that no rule names."""
    assert php_json_params(body) is None
