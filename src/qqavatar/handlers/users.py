"""App.User.Register, Login, Check and Logout: the members of an app (SPEC §6).

Business failures are answers, not errors: ret 200 with `err_code` > 0 and a
Chinese `err_msg`, as YesApi answers them. Every `data` has the same keys
whatever the outcome, so clients can read it without checking first. A database
outage is the server's fault: ret 500, `服务器运行错误: 数据库暂时不可用…`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from ..apicall import Call, Result
from ..components import Runtime
from ..members.guard import well_formed
from ..members.service import LoginFailure, MemberService, MembersUnavailable
from ..protocol import errors
from ..protocol.member_rules import LOGIN_FAILED, NAME_TAKEN, NOT_LOGGED_IN
from ..protocol.phpjson import dumps


def _members(runtime: Runtime) -> MemberService:
    if runtime.members is None:  # the members feature did not start: a deployment bug
        raise errors.server_error("会员服务未启用")
    return runtime.members


Handler = Callable[[Runtime, Call], Awaitable[Result]]


def _member_service(handler: Handler) -> Handler:
    """Each client's budget of App.User.* calls first (limits/perclient.py), then the
    handler, a database outage answered as one."""
    @wraps(handler)
    async def handle(runtime: Runtime, call: Call) -> Result:
        if runtime.client_limits is not None:
            await runtime.client_limits.admit_member_call(call)
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


@_member_service
async def register(runtime: Runtime, call: Call) -> Result:
    uuid = await _members(runtime).register(
        _app_key(call), call.values["username"], call.values["password"])
    if uuid is None:
        return _answer(1, NAME_TAKEN, uuid="")
    return _answer(0, "", uuid=uuid)


@_member_service
async def login(runtime: Runtime, call: Call) -> Result:
    app_key, username = _app_key(call), call.values["username"]
    throttle = runtime.client_limits
    if throttle is not None:  # failed logins per address and per name (limits/perclient.py)
        await throttle.check_login(call, app_key, username)
    outcome = await _members(runtime).login(app_key, username, call.values["password"])
    if isinstance(outcome, LoginFailure):
        if throttle is not None:
            await throttle.login_failed(call, app_key, username)
        return _answer(1, LOGIN_FAILED, uuid="", token="")
    call.member = outcome.uuid  # a login makes the member active today
    return _answer(0, "", uuid=outcome.uuid, token=outcome.token)


@_member_service
async def check(runtime: Runtime, call: Call) -> Result:
    uuid, token = call.values["uuid"], call.values["token"]
    if not well_formed(uuid, token) or not await _members(runtime).check(
        _app_key(call), uuid, token
    ):
        return _answer(1, NOT_LOGGED_IN, is_login=False)
    call.member = uuid.upper()
    return _answer(0, "", is_login=True)


@_member_service
async def logout(runtime: Runtime, call: Call) -> Result:
    uuid, token = call.values["uuid"], call.values["token"]
    if not well_formed(uuid, token) or not await _members(runtime).logout(
        _app_key(call), uuid, token
    ):
        return _answer(1, NOT_LOGGED_IN)
    call.member = uuid.upper()
    return _answer(0, "")
