"""PhalApi's parameter formatters: each rule turns one raw string into a value or an ApiError.

PhalApi semantics kept here:
- a default applies only when the key is absent; an empty string is a value;
- string lengths are counted in bytes, as PhalApi's `strlen` (its rules name no `format`);
- boolean: numeric strings are true when > 0, else only ok/true/success/on/yes;
- enum: loose comparison, as PHP's `in_array` (`"40"` and `"40.0"` match 40).

A parameter sent as a JSON array or object arrives as `NESTED`: a rule that reads it refuses
it (`参数size不能是数组或对象`); a key no rule names is never read (docs/compatibility.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .errors import ApiError
from .numbers import php_number

_TRUE_WORDS = frozenset({"ok", "true", "success", "on", "yes"})
NUMBER_PATTERN = re.compile(r"[1-9][0-9]{4,11}")


class _Nested(str):
    """The value of a parameter sent as a JSON array or object. Empty text: it adds nothing
    to a sign over the values, as a key the server never reads should not."""

    __slots__ = ()


NESTED = _Nested()


def _nested_or(name: str, raw: str) -> str:
    if raw is NESTED:
        raise errors.nested_value(name)
    return raw


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
        return self.convert(_nested_or(self.name, raw))


@dataclass(frozen=True, slots=True)
class Str(Rule):
    min_len: int | None = None
    max_len: int | None = None

    def convert(self, raw: str) -> Any:
        # PhalApi's strlen: bytes (its rules name no `format`, which would count characters).
        length = len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogatepass"))
        if self.min_len is not None and length < self.min_len:
            raise errors.too_short(self.name, self.min_len, length)
        if self.max_len is not None and length > self.max_len:
            raise errors.too_long(self.name, self.max_len, length)
        return raw


@dataclass(frozen=True, slots=True)
class Enum(Rule):
    options: tuple[int, ...] = ()
    # "40" → 40: the spellings clients send, answered without reading a number (hot path).
    _spelled: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spelled", {str(option): option for option in self.options})

    def convert(self, raw: str) -> Any:
        value = self._spelled.get(raw)
        if value is not None:
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
            if raw is NESTED:
                raise errors.nested_value(rule.name)
            values[rule.name] = rule.convert(raw)
        elif rule.required:
            raise errors.missing(rule.name)
        else:
            values[rule.name] = rule.default
    return values


class RuleSet:
    """Rules a call must pass together, read at once when it passes them all (`parse_all`).
    Each names its own parameter (`ValueError` otherwise)."""

    __slots__ = ("by_name", "defaults", "required", "rules")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.by_name = {rule.name: rule for rule in self.rules}
        if len(self.by_name) != len(self.rules):
            raise ValueError("two rules for one parameter")
        self.defaults = {rule.name: rule.default for rule in self.rules}
        self.required = tuple(rule.name for rule in self.rules if rule.required)


def parse_all(params: Mapping[str, str], rules: RuleSet) -> dict[str, Any] | None:
    """What `parse` gives when no rule fails, reading only the parameters sent (a call sends
    a few; most rules are absent and take their default). None when a rule fails: `parse`,
    rule by rule in order, then says which failure comes first."""
    values = rules.defaults.copy()
    by_name = rules.by_name
    try:
        for name, raw in params.items():
            rule = by_name.get(name)
            if rule is not None:
                if raw is NESTED:
                    return None
                values[name] = rule.convert(raw)
    except ApiError:
        return None
    for name in rules.required:
        if name not in params:
            return None
    return values
