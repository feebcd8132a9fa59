"""App.User.Register, Login, Check and Logout: the members of an app (SPEC §6).

Business failures are answers, not errors: ret 200 with `err_code` > 0 and a
Chinese `err_msg`, as YesApi answers them. Every `data` has the same keys
whatever the outcome, so clients can read it without checking first. A database
outage is the server's fault: ret 500, `服务器运行错误: 数据库暂时不可用…`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from ..calls import Call, Result
from ..members.guard import well_formed
from ..members.service import LoginFailure, MemberService, MembersUnavailable
from ..protocol import errors
from ..protocol.params import Rule, Str
from ..protocol.phpjson import dumps
from ..runtime import Runtime

USERNAME_MAX_LEN = 50
_MD5 = re.compile(r"[0-9A-Fa-f]{32}")

NAME_TAKEN = "注册失败，该账号已被注册"
NO_SUCH_MEMBER = "登录失败，账号不存在"
WRONG_PASSWORD = "登录失败，密码错误或已被封号"
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


def _members(runtime: Runtime) -> MemberService:
    if runtime.members is None:  # the members feature did not start: a deployment bug
        raise errors.server_error("会员服务未启用")
    return runtime.members


Handler = Callable[[Runtime, Call], Awaitable[Result]]


def _needs_database(handler: Handler) -> Handler:
    @wraps(handler)
    async def handle(runtime: Runtime, call: Call) -> Result:
        try:
            return await handler(runtime, call)
        except MembersUnavailable:
            raise errors.database_unavailable() from None
    return handle


def _answer(err_code: int, err_msg: str, **fields: object) -> Result:
    return Result(data=dumps({"err_code": err_code, "err_msg": err_msg, **fields}),
                  err_code=err_code)


def _app_key(call: Call) -> str:
    assert call.app is not None  # these services need an app
    return call.app.app_key


@_needs_database
async def register(runtime: Runtime, call: Call) -> Result:
    uuid = await _members(runtime).register(
        _app_key(call), call.values["username"], call.values["password"])
    if uuid is None:
        return _answer(1, NAME_TAKEN, uuid="")
    return _answer(0, "", uuid=uuid)


@_needs_database
async def login(runtime: Runtime, call: Call) -> Result:
    outcome = await _members(runtime).login(
        _app_key(call), call.values["username"], call.values["password"])
    if outcome is LoginFailure.NO_SUCH_MEMBER:
        return _answer(1, NO_SUCH_MEMBER, uuid="", token="")
    if outcome is LoginFailure.WRONG_PASSWORD:
        return _answer(2, WRONG_PASSWORD, uuid="", token="")
    assert not isinstance(outcome, LoginFailure)
    call.member = outcome.uuid  # a login makes the member active today
    return _answer(0, "", uuid=outcome.uuid, token=outcome.token)


@_needs_database
async def check(runtime: Runtime, call: Call) -> Result:
    uuid, token = call.values["uuid"], call.values["token"]
    if not well_formed(uuid, token) or not await _members(runtime).check(
        _app_key(call), uuid, token
    ):
        return _answer(1, NOT_LOGGED_IN, is_login=False)
    call.member = uuid.upper()
    return _answer(0, "", is_login=True)


@_needs_database
async def logout(runtime: Runtime, call: Call) -> Result:
    uuid, token = call.values["uuid"], call.values["token"]
    if not well_formed(uuid, token) or not await _members(runtime).logout(
        _app_key(call), uuid, token
    ):
        return _answer(1, NOT_LOGGED_IN)
    call.member = uuid.upper()
    return _answer(0, "")
