"""The members' parameter rules and answer texts (SPEC §6): App.User.Register, Login, Check
and Logout read these; `handlers/users.py` answers with them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from . import errors
from .params import Rule, Str

USERNAME_MAX_LEN = 50
_MD5 = re.compile(r"[0-9A-Fa-f]{32}")

NAME_TAKEN = "注册失败，该账号已被注册"
# One answer for an unknown name and a wrong password: YesApi documents no codes that tell
# them apart, and two answers would tell anyone which names exist (docs/security.md).
LOGIN_FAILED = "登录失败，账号不存在或密码错误"
NOT_LOGGED_IN = "用户未登录，或登录态已过期"


@dataclass(frozen=True, slots=True)
class Username(Str):
    """1–50 characters; no control characters, no surrounding whitespace."""

    def convert(self, raw: str) -> Any:
        value = Str.convert(self, raw)  # (zero-argument super() fails in slots dataclasses)
        if value != value.strip() or any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
            raise errors.bad_format(self.name, raw)
        return value


@dataclass(frozen=True, slots=True)
class Md5(Rule):
    """32 hex digits. The value is never echoed: it may be a raw password sent by mistake."""

    def convert(self, raw: str) -> Any:
        if _MD5.fullmatch(raw) is None:
            raise errors.client_error(
                400, f"参数{self.name}应该是32位十六进制的md5值（md5(原始密码)），请勿传递明文密码")
        return raw.lower()

    def json_schema(self) -> dict[str, Any]:
        """For the OpenAPI document (web/servicedoc.py asks rules that know better)."""
        return {"type": "string", "pattern": "^[0-9A-Fa-f]{32}$"}


CREDENTIAL_RULES: tuple[Rule, ...] = (
    Username("username", required=True, min_len=1, max_len=USERNAME_MAX_LEN,
             description="账号，1到50个字符"),
    Md5("password", required=True, description="md5(原始密码)，32位十六进制"),
)
SESSION_RULES: tuple[Rule, ...] = (
    Str("uuid", required=True, description="会员UUID（登录时返回）"),
    Str("token", required=True, description="会员登录凭证（登录时返回）"),
)
