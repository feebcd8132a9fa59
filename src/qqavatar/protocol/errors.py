"""The error catalogue: `ret` codes and message texts as PhalApi/YesApi write them.

Every client-visible failure is an `ApiError`; the web layer turns it into the
error envelope. Messages keep PhalApi's exact wording (clients match on them).
"""

from __future__ import annotations

CLIENT_PREFIX = "客户端非法请求："
SERVER_PREFIX = "服务器运行错误: "
ECHO_LIMIT = 32  # echoed user values are cut to this many characters


class ApiError(Exception):
    """A request that ends with an error envelope: `ret` and the full `msg`."""

    def __init__(self, ret: int, msg: str) -> None:
        super().__init__(msg)
        self.ret = ret
        self.msg = msg


def client_error(ret: int, text: str) -> ApiError:
    return ApiError(ret, CLIENT_PREFIX + text)


def echo(value: str) -> str:
    """A user-supplied value as it may appear inside a message."""
    return value[:ECHO_LIMIT]


def missing(name: str) -> ApiError:
    return client_error(400, f"缺少必要参数{name}")


def too_short(name: str, minimum: int, actual: int) -> ApiError:
    return client_error(400, f"{name}.len应该大于或等于{minimum}, 但现在{name}.len = {actual}")


def too_long(name: str, maximum: int, actual: int) -> ApiError:
    return client_error(400, f"{name}.len应该小于等于{maximum}, 但现在{name}.len = {actual}")


def not_in_enum(name: str, options: tuple[str, ...], value: str) -> ApiError:
    return client_error(400, f"参数{name}应该为：{'/'.join(options)}，但现在{name} = {echo(value)}")


def bad_number(name: str, value: str) -> ApiError:
    return client_error(400, f"{name}应该是5到12位数字, 但现在{name} = {echo(value)}")


def bad_format(name: str, value: str) -> ApiError:
    return client_error(400, f"参数{name}格式不正确, 但现在{name} = {echo(value)}")


def uuid_without_token() -> ApiError:
    return client_error(400, "uuid需要和token一起传递")


def unknown_service(name: str) -> ApiError:
    return client_error(404, f"接口服务{echo(name)}不存在")


def unknown_path(path: str) -> ApiError:
    return client_error(404, f"路径{echo(path)}不存在")


def illegal_service(name: str) -> ApiError:
    """A service name with an empty part (`s=`, `App.QQ.`): PhalApi's `service (…) illegal`."""
    return client_error(400, f"非法服务：{echo(name)}")


def nested_value(name: str) -> ApiError:
    """A parameter some rule reads, sent as a JSON array or object."""
    return client_error(400, f"参数{echo(name)}不能是数组或对象")


def unknown_app() -> ApiError:
    return client_error(406, "非法app_key，请核对你所在的接口域名")


def bad_sign() -> ApiError:
    return client_error(409, "签名错误")


def session_expired() -> ApiError:
    return client_error(401, "登录会话已过期，请重新登录")


def ip_forbidden() -> ApiError:
    return client_error(402, "当前IP禁止访问")


def rate_limited() -> ApiError:
    return client_error(408, "请求过于频繁，请稍后再试")


def quota_exhausted() -> ApiError:
    return client_error(413, "接口调用次数已用完")


def server_error(detail: str) -> ApiError:
    return ApiError(500, SERVER_PREFIX + detail)


def database_unavailable() -> ApiError:
    """The database is unreachable: calls that need it fail, avatars keep being served."""
    return server_error("数据库暂时不可用，请稍后重试 (database unavailable)")
