"""One typed settings object, read from `QQAVATAR_*` environment variables.

Byte sizes accept plain integers or a unit suffix (`64MiB`, `2MB`, `512k`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_USER_URL = "https://q1.qlogo.cn/g?b=qq&nk={qq}&s={size}"
DEFAULT_GROUP_URL = "https://p.qlogo.cn/gh/{group}/{group}/{size}/"

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QQAVATAR_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None

    upstream_user_url: str = DEFAULT_USER_URL
    upstream_group_url: str = DEFAULT_GROUP_URL
    upstream_timeout: float = Field(default=5.0, gt=0)
    upstream_max_bytes: ByteSize = 2 * 1024**2

    cache_max_bytes: ByteSize = 128 * 1024**2
    cache_ttl: int = Field(default=86400, ge=0)
    cache_default_ttl: int = Field(default=600, ge=0)

    admin_token: str | None = None
    http_status: Literal["200", "mirror"] = "200"

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qqavatar.db').resolve()}"
