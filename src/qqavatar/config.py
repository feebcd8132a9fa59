"""Where settings come from, what is wrong with them, and how they are shown.

Sources, strongest first: keyword arguments (tests), `QQAVATAR_*` environment variables,
the TOML file named by `QQAVATAR_CONFIG` (`qqavatar --config FILE` sets it), defaults.
The file's path travels in the environment so that uvicorn's worker processes, which
import the app afresh, read the same file.

Every problem becomes a `ConfigError` whose message is one line naming the key (as the
operator wrote it: `QQAVATAR_CACHE_TTL`, or `cache_ttl in /etc/qqavatar.toml`).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

ENV_PREFIX = "QQAVATAR_"
CONFIG_ENV = "QQAVATAR_CONFIG"

# `QQAVATAR_*` variables that are not settings: the config file itself, the consumer
# CLI's (`qqavatar get/fetch`), the test suite's. Anything else with the prefix that
# matches no setting is a typo, and a typo must not be silently ignored.
# New variables that are not settings belong here (or under a prefix below).
FOREIGN_ENV = frozenset({
    CONFIG_ENV,
    "QQAVATAR_URL", "QQAVATAR_APP_KEY", "QQAVATAR_APP_SECRET",    # consumer CLI
    "QQAVATAR_STRICT", "QQAVATAR_CHROMIUM",                       # tests
})
FOREIGN_ENV_PREFIXES = ("QQAVATAR_TEST_", "QQAVATAR_ST_", "QQAVATAR_SCHEMATHESIS_",
                         "QQAVATAR_CHAOS_")  # tests

MASK = "****"
_SECRET_NAME = re.compile(r"token|secret|password|passwd|(?:^|_)key$")
_SECRET_QUERY = re.compile(r"pass|secret|token|key", re.IGNORECASE)


class ConfigError(Exception):
    """A configuration that cannot be used; `str()` is one line for the operator."""


def config_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    value = environ.get(CONFIG_ENV, "").strip()
    return Path(value) if value else None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{CONFIG_ENV}: {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{CONFIG_ENV}: {path}: is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{CONFIG_ENV}: {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _unknown(name: str, fields: Iterable[str], shown: str, prefix: str = "") -> ConfigError:
    """`name` (a field name, lower case) is no setting; suggest the nearest one if any."""
    close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.75)
    hint = f" (did you mean {prefix}{close[0].upper() if prefix else close[0]}?)" if close else ""
    return ConfigError(f"{shown}: unknown setting{hint}")


class ConfigFileSource(PydanticBaseSettingsSource):
    """The TOML file: top-level keys are the field names (`cache_max_bytes = "64MiB"`)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = config_path()
        self.values: dict[str, Any] = {}
        if self.path is None:
            return
        values = read_config_file(self.path)
        fields = settings_cls.model_fields
        for key, value in values.items():
            if key not in fields:
                raise _unknown(key, fields, f"{key} in {self.path}")
            if isinstance(value, dict):
                raise ConfigError(f"{key} in {self.path}: expected a value, found a table")
        self.values = values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def check_environment(fields: Iterable[str], environ: Mapping[str, str] = os.environ) -> None:
    """Fail on a `QQAVATAR_*` variable that names no setting and is not someone else's."""
    fields = list(fields)
    known = {ENV_PREFIX + name.upper() for name in fields}
    for name in environ:
        upper = name.upper()  # pydantic-settings reads the prefix case-insensitively
        if (upper.startswith(ENV_PREFIX) and upper not in known and upper not in FOREIGN_ENV
                and not upper.startswith(FOREIGN_ENV_PREFIXES)):
            raise _unknown(upper.removeprefix(ENV_PREFIX).lower(), fields, name, ENV_PREFIX)


def env_name(field: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The environment variable that sets `field`, if one does."""
    wanted = ENV_PREFIX + field.upper()
    return next((name for name in environ if name.upper() == wanted), None)


def source_of(field: str, file_values: Mapping[str, Any], init_values: Mapping[str, Any],
              environ: Mapping[str, str] = os.environ) -> str:
    """How the operator named the place `field` came from: `QQAVATAR_X`, `x in FILE`, …"""
    if field in init_values:
        return field
    variable = env_name(field, environ)
    if variable is not None:
        return variable
    path = config_path(environ)
    if path is not None and field in file_values:
        return f"{field} in {path}"
    return field


def explain(exc: ValidationError, settings_cls: type[BaseModel],
            init_values: Mapping[str, Any]) -> ConfigError:
    """A pydantic error as one line per problem, joined: `KEY: what is wrong (got 'x')`."""
    file_values = _file_values_quietly()
    problems = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        shown = source_of(field, file_values, init_values) if field else "settings"
        given = error.get("input")
        shows_input = field in settings_cls.model_fields and not is_secret(field) \
            and isinstance(given, str | int | float | bool) and repr(given) not in message
        if shows_input:
            message += f" (got {given!r})"
        problems.append(f"{shown}: {message}")
    return ConfigError("; ".join(problems))


def _file_values_quietly() -> dict[str, Any]:
    path = config_path()
    if path is None:
        return {}
    try:
        return read_config_file(path)
    except ConfigError:
        return {}


# --- showing the effective configuration ----------------------------------------------------


def is_secret(field: str) -> bool:
    return _SECRET_NAME.search(field) is not None


def mask_url(url: str) -> str:
    """`postgresql://user:pw@host/db?password=x` → `postgresql://user:****@host/db?password=****`;
    all of it masked when it holds an `@` outside a `scheme://host` part (`postgresql//u:pw@h`):
    where a password would be cannot be told. The one masker of URLs shown to anyone."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in url and not (parts.scheme and netloc):
            return MASK
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":" + MASK
            elif userinfo and parts.scheme.startswith("redis"):
                userinfo = MASK  # redis://secret@host: a lone userinfo is the password
            netloc = f"{userinfo}@{host}"
        query = "&".join(_mask_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
        # Replace the pieces in place: unsplitting would rewrite `sqlite:////abs/path`.
        if netloc != parts.netloc:
            url = url.replace(f"//{parts.netloc}", f"//{netloc}", 1)
        if query != parts.query:
            url = url.replace(f"?{parts.query}", f"?{query}", 1)
        return url
    except ValueError:
        return MASK  # unparseable: show nothing rather than a password


def _mask_pair(pair: str) -> str:
    name, equals, _value = pair.partition("=")
    return f"{name}={MASK}" if equals and _SECRET_QUERY.search(name) else pair


def masked(field: str, value: Any) -> Any:
    """The value as it may be shown: secret strings as `****` (a number such as `token_ttl`
    is no secret), URLs (in any setting: storage URIs too) without their password."""
    if isinstance(value, str):
        if is_secret(field):
            return MASK
        return mask_url(value) if "//" in value or "@" in value else value
    if isinstance(value, list | tuple):
        return [masked(field, item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    value: Any      # masked, JSON-ready
    source: str     # "default", an environment variable, or "file"


def effective(settings: BaseModel, environ: Mapping[str, str] = os.environ) -> list[Entry]:
    """Every setting with its masked value and where it came from, in declaration order."""
    file_values = _file_values_quietly()
    entries = []
    for name in type(settings).model_fields:
        variable = env_name(name, environ)
        if variable is not None:
            source = variable
        elif name in file_values:
            source = "file"
        else:
            source = "default"
        entries.append(Entry(name, masked(name, getattr(settings, name)), source))
    return entries
