"""One typed settings object, read from `QQAVATAR_*` environment variables and an optional
TOML file (`qqavatar --config FILE` / `QQAVATAR_CONFIG`); the environment wins over the file.
Unknown keys and bad values raise `config.ConfigError` with a one-line message (see config.py).

Byte sizes accept plain integers or a unit suffix (`64MiB`, `2MB`, `512k`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .config import ConfigError, ConfigFileSource, check_environment, explain
from .limits.limit_values import clean_cidrs, join_list
from .secretbox import check_key

DEFAULT_USER_URL = "https://q1.qlogo.cn/g?b=qq&nk={qq}&s={size}"
DEFAULT_GROUP_URL = "https://p.qlogo.cn/gh/{group}/{group}/{size}/"
DEFAULT_USER_ALTERNATES = (
    "https://q2.qlogo.cn/g?b=qq&nk={qq}&s={size}",
    "https://q3.qlogo.cn/g?b=qq&nk={qq}&s={size}",
    "https://q4.qlogo.cn/g?b=qq&nk={qq}&s={size}",
    "https://q.qlogo.cn/headimg_dl?dst_uin={qq}&spec={size}&img_type=jpg",
)

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_byte_size(value: object) -> object:
    """`64MiB` → 67108864; integers pass through; anything else is left for pydantic to reject."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None or match.group(2).lower() not in _UNITS:
            raise ValueError(f"not a byte size: {value!r} (try 67108864, 64MiB or 64MB)")
        return int(match.group(1)) * _UNITS[match.group(2).lower()]
    return value


ByteSize = Annotated[int, BeforeValidator(parse_byte_size), Field(ge=0)]


def parse_public_url(value: str | None) -> str | None:
    """`https://avatar.example.com/` → `https://avatar.example.com`; "" counts as unset."""
    if not value:
        return None
    parsed = urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query \
            or parsed.fragment:
        raise ValueError(f"not an http(s) base URL: {value!r} (try https://avatar.example.com)")
    return value.strip().rstrip("/")


PublicUrl = Annotated[str | None, AfterValidator(parse_public_url)]
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?")


def parse_hosts(value: str) -> str:
    """`Avatar.example.com, cdn.example.com:8443` → `avatar.example.com,cdn.example.com:8443`."""
    hosts = [item.strip().lower() for item in value.split(",") if item.strip()]
    for host in hosts:
        if _HOST.fullmatch(host) is None:
            raise ValueError(f"not a host[:port]: {host!r} (try avatar.example.com)")
    return ",".join(hosts)


HostList = Annotated[str, AfterValidator(parse_hosts)]


def _check_secret_key(value: str | None) -> str | None:
    return check_key(value) if value else None  # "" counts as unset


SecretKey = Annotated[str | None, AfterValidator(_check_secret_key)]


def _clean_cidr_list(value: str) -> str:
    return join_list(clean_cidrs(value))


CidrList = Annotated[str, AfterValidator(_clean_cidr_list)]  # "10.0.0.0/8,127.0.0.1/32"


def parse_url_list(value: object) -> object:
    """Avatar URL templates: a JSON list, or comma-separated; "" is an empty list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list of URL templates: {exc}") from None
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


def check_templates(value: list[str] | None) -> list[str] | None:
    for template in value or ():
        if not template.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL template: {template!r}")
        try:
            template.format(qq="10001", group="10001", number="10001", size=100)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"bad URL template {template!r}: use {{qq}} and {{size}} "
                             f"({exc!r})") from None
    return value


def parse_disk_dir(value: object) -> object:
    """`off` (any case) turns the disk tier off; "" counts as unset."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "off":
            return "off"
        return text or None
    return value


DiskDir = Annotated[Literal["off"] | Path | None, BeforeValidator(parse_disk_dir)]


# NoDecode: the environment's text goes to parse_url_list as is (not decoded as JSON first).
UrlList = Annotated[list[str] | None, NoDecode, BeforeValidator(parse_url_list),
                    AfterValidator(check_templates)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QQAVATAR_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    # s per Redis connect and per round trip; slower counts as Redis down for a second
    # (memory, upstream and each server's own quota counts then answer).
    redis_timeout: float = Field(default=0.25, gt=0)

    upstream_user_url: str = DEFAULT_USER_URL
    upstream_group_url: str = DEFAULT_GROUP_URL
    upstream_timeout: float = Field(default=5.0, gt=0)
    upstream_max_bytes: ByteSize = 2 * 1024**2

    cache_max_bytes: ByteSize = 256 * 1024**2  # the hot set; docs/benchmarks.md, "mix"
    cache_ttl: int = Field(default=86400, ge=0)
    cache_default_ttl: int = Field(default=600, ge=0)

    # Avatar cache policy and upstream resilience (docs/guide.md, "Cache policy").
    # Tried in turn after upstream_user_url; unset: see `upstream_user_alternates`.
    upstream_user_urls: UrlList = None
    negative_ttl: int = Field(default=30, ge=0)   # s an upstream failure is remembered per avatar
    stale_ttl: int = Field(default=86400, ge=0)   # s past expiry served STALE while refreshing
    stale_if_error_ttl: int = Field(default=7 * 86400, ge=0)  # s past expiry served on failure
    circuit_threshold: int = Field(default=10, ge=1)  # host failures in a row (breaker.py)
    circuit_cooldown: float = Field(default=30.0, gt=0)  # s of failing fast before a probe
    disk_cache_dir: DiskDir = None          # unset: <data_dir>/avatars; "off": no disk tier
    disk_cache_max_bytes: ByteSize | None = None  # unset: 1 GiB, or half the disk's free space

    # The dashboard's token, 32+ characters; unset: the one `serve` made in the data dir, if
    # any (web/admin/access.py).
    admin_token: str | None = None
    # Bearer token /metrics and /readyz then ask for (/healthz stays open); unset: open.
    metrics_token: str | None = None
    # Encrypts app secrets at rest (qqavatar.secretbox); unset: stored as plaintext.
    secret_key: SecretKey = None
    http_status: Literal["200", "mirror"] = "200"

    # Members and per-app limits (docs/guide.md, "Members and limits").
    token_ttl: int = Field(default=30 * 86400, ge=1)  # seconds a login session holds
    # Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: CidrList = ""
    # A `limits` storage URI, e.g. redis://host:6379; unset: redis_url when set, else memory://.
    rate_limit_storage: str | None = None
    # Per client address (limits/perclient.py; 0: off): private link views and App.User.*
    # calls per second, failed logins per minute per username (three times that per address).
    client_view_rate: int = Field(default=50, ge=0)
    client_member_rate: int = Field(default=50, ge=0)
    client_failed_logins: int = Field(default=10, ge=0)

    # Operating it: logs, metrics, readiness (docs/operations.md, "Operating it").
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: JSON unless stderr is a tty
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False             # one log line per request; off on the hot path
    metrics_dir: Path | None = None      # multi-worker metrics files; unset: a temporary dir
    ready_timeout: float = Field(default=2.0, gt=0)  # seconds per /readyz check

    # Base of private link URLs as the public reaches this server (behind a proxy).
    public_url: PublicUrl = None
    # Named in every answer's X-Served-By header (qqavatar.identity); unset: the host name.
    server_name: str | None = None
    # Host names this server answers to, for link URLs when public_url is unset: a request's
    # Host in the list is used as is, any other gets the first; unset: the address the
    # connection reached. An arbitrary Host is never used (docs/security.md, "_auth").
    allowed_hosts: HostList = ""
    # Seconds a client gets to send a request's headers, and again its body (granian cuts a
    # slow header; the body deadline is ours, on both servers). See docs/reliability.md.
    client_timeout: float = Field(default=10.0, gt=0)
    demo: bool = False  # `qqavatar demo` sets it: demo pages such as /demo/comments

    def __init__(self, **values: Any) -> None:
        check_environment(type(self).model_fields)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise explain(exc, type(self), values) from None
        except SettingsError as exc:  # e.g. a list setting whose env value is not JSON
            raise ConfigError(str(exc).splitlines()[0]) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Strongest first: arguments, environment, then the config file.
        return (init_settings, env_settings, ConfigFileSource(settings_cls),
                dotenv_settings, file_secret_settings)

    @property
    def upstream_user_alternates(self) -> list[str]:
        """User templates tried after `upstream_user_url`: those configured, or, when the
        primary is Tencent's default, Tencent's other hosts. A custom primary (a mirror, a
        test double) gets none unless configured: no silent detour to the internet."""
        if self.upstream_user_urls is not None:
            return [url for url in self.upstream_user_urls if url != self.upstream_user_url]
        return list(DEFAULT_USER_ALTERNATES) if self.upstream_user_url == DEFAULT_USER_URL else []

    @property
    def disk_cache_path(self) -> Path | None:
        """The disk tier's directory, None when it is off."""
        if self.disk_cache_dir == "off":
            return None
        return self.disk_cache_dir if self.disk_cache_dir is not None \
            else self.data_dir / "avatars"

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qqavatar.db').resolve()}"
