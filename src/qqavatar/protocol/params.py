"""PhalApi's parameter formatters: each rule turns one raw string into a value or an ApiError.

PhalApi semantics kept here:
- a default applies only when the key is absent; an empty string is a value;
- boolean: numeric strings are true when > 0, else only ok/true/success/on/yes;
- enum: loose comparison, as PHP's `in_array` (`"40"` and `"40.0"` match 40).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import errors

_TRUE_WORDS = frozenset({"ok", "true", "success", "on", "yes"})
# PHP 8's numeric strings: optional surrounding whitespace, sign, decimal or exponent.
_PHP_NUMERIC = re.compile(
    r"[ \t\n\r\v\f]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\v\f]*"
)
NUMBER_PATTERN = re.compile(r"[1-9][0-9]{4,11}")


def php_number(value: str) -> float | None:
    """The number PHP reads from a numeric string, or None when PHP calls it non-numeric."""
    if _PHP_NUMERIC.fullmatch(value) is None:
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    required: bool = False
    default: Any = None
    description: str = ""  # for the API docs (/docs, /openapi.json); no effect on parsing

    def convert(self, raw: str) -> Any:
        return raw

    def apply(self, params: Mapping[str, str]) -> Any:
        raw = params.get(self.name)
        if raw is None:
            if self.required:
                raise errors.missing(self.name)
            return self.default
        return self.convert(raw)


@dataclass(frozen=True, slots=True)
class Str(Rule):
    min_len: int | None = None
    max_len: int | None = None

    def convert(self, raw: str) -> Any:
        length = len(raw)  # PhalApi counts characters (mb_strlen), not bytes
        if self.min_len is not None and length < self.min_len:
            raise errors.too_short(self.name, self.min_len, length)
        if self.max_len is not None and length > self.max_len:
            raise errors.too_long(self.name, self.max_len, length)
        return raw


@dataclass(frozen=True, slots=True)
class Enum(Rule):
    options: tuple[int, ...] = ()

    def convert(self, raw: str) -> Any:
        if raw.isdigit() and raw.isascii() and raw[0] != "0":  # "40": no regex needed
            value = int(raw)
            if value in self.options:
                return value
        number = php_number(raw)
        for option in self.options:
            if number == option:
                return option
        raise errors.not_in_enum(self.name, tuple(map(str, self.options)), raw)


@dataclass(frozen=True, slots=True)
class Bool(Rule):
    def convert(self, raw: str) -> Any:
        return parse_bool(raw)


@dataclass(frozen=True, slots=True)
class Number(Rule):
    """A QQ or group number: 5 to 12 ASCII digits, no leading zero. Kept as text."""

    def convert(self, raw: str) -> Any:
        if NUMBER_PATTERN.fullmatch(raw) is None:
            raise errors.bad_number(self.name, raw)
        return raw


@dataclass(frozen=True, slots=True)
class Pattern(Rule):
    pattern: re.Pattern[str] = re.compile("")

    def convert(self, raw: str) -> Any:
        if self.pattern.fullmatch(raw) is None:
            raise errors.bad_format(self.name, raw)
        return raw


# The spellings clients actually send, answered without the regex (hot path).
_COMMON_BOOLS = {"0": False, "1": True, "": False, "true": True, "false": False}


def parse_bool(raw: str) -> bool:
    known = _COMMON_BOOLS.get(raw)
    if known is not None:
        return known
    number = php_number(raw)
    if number is not None:
        return number > 0
    return raw.lower() in _TRUE_WORDS


def parse(params: Mapping[str, str], rules: Sequence[Rule]) -> dict[str, Any]:
    """Apply rules in order; the first failure raises its ApiError.

    `Rule.apply`, inlined: most rules of a call are absent and take their default, and a
    method call per rule was a tenth of a cached hit's own time (bench/hotpath.py)."""
    values: dict[str, Any] = {}
    for rule in rules:
        raw = params.get(rule.name)
        if raw is not None:
            values[rule.name] = rule.convert(raw)
        elif rule.required:
            raise errors.missing(rule.name)
        else:
            values[rule.name] = rule.default
    return values
