"""The service catalogue: each YesApi service's name, parameter rules and documentation.

Which handler answers a service is bound above this, in `handlers/__init__.py`; every
layer below the handlers (calls, stats, metrics, the docs) reads services from here.

Names resolve as PhalApi does: case-insensitively, and a two-part name
(`QQ.UserImage`) means the `App` namespace (`App.QQ.UserImage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .avatars import Kind
from .protocol import errors
from .protocol import member_rules as members
from .protocol.avatar_errors import AVATAR_ERRORS
from .protocol.avatar_rules import DEFAULT, FORMAT
from .protocol.envelope import CALLBACK_PATTERN
from .protocol.params import Bool, Enum, Number, Pattern, Rule, Str

SIZES = (40, 100, 140, 640)

# How the answer is shaped; the only rules of services that need no app.
ENVELOPE_RULES: tuple[Rule, ...] = (
    Bool("return_data", default=False,
         description="数据返回结构：0 返回完整的ret/data/msg结构，1 只返回data "
                     "(1: the body is only `data`)"),
    Pattern("callback", pattern=CALLBACK_PATTERN,
            description="JSONP回调函数名，返回text/javascript "
                        "(JSONP: the body is `callback(…)`)"),
)
COMMON_RULES: tuple[Rule, ...] = (
    Str("app_key", required=True, min_len=32, max_len=32,
        description="开发者应用的app_key (your app's key)"),
    Str("sign", description="接口签名，应用开启签名时必须，见签名指南 (request signature)"),
    Str("uuid", description="当前登录的应用会员ID，需要和token一起传递 "
                            "(a member's uuid, with token)"),
    Str("token", description="当前登录会员的会话凭证，需要和uuid一起传递 "
                             "(the member's session token)"),
    *ENVELOPE_RULES,
)


@dataclass(frozen=True, slots=True)
class DataField:
    """One field of a service's `data` on success, for the API docs."""

    name: str
    type: str                    # JSON Schema type: string, integer, boolean, array, object
    description: str
    example: Any = None          # shown in the worked example's answer
    required: bool = True        # always present on success


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    description: str
    rules: tuple[Rule, ...] = ()
    needs_app: bool = True       # Site.Index answers anyone
    image: bool = False          # answers with image bytes when `output` is true
    avatar_kind: Kind = "user"   # which avatars (the avatar services only)
    number_param: str = ""
    # The session guard checks a uuid+token pair; App.User.* handle (or ignore) it themselves.
    session_guard: bool = True
    # For the API docs (/docs, /openapi.json) only; without them a service is documented
    # from its rules alone.
    returns: tuple[DataField, ...] = ()         # `data` on success
    errors: tuple[tuple[int, str], ...] = ()    # data.err_code → meaning
    example: tuple[tuple[str, str], ...] = ()   # parameters of the worked example


# A real 1×1 PNG, so the docs' worked answer is a complete, decodable one.
_EXAMPLE_IMG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
                "WjR9awAAAABJRU5ErkJggg==")
AVATAR_RETURNS = (
    DataField("err_code", "integer", "操作码，0表示成功，负数表示系统失败场景 "
              "(0: success; < 0: the avatar could not be fetched)", 0),
    DataField("err_msg", "string", "错误提示信息，err_code非0时参考此提示信息 "
              "(why, when err_code ≠ 0)", ""),
    DataField("img", "string", "output=0时的base64头像数据，不带data:前缀；失败时为空 "
              "(base64 of the image, no `data:` prefix)", _EXAMPLE_IMG),
    DataField("is_default", "boolean", "该号码没有自己的头像，返回的是腾讯默认头像 "
              "(true: Tencent's default image)", False, required=False),
    DataField("content_type", "string", "图片类型 (the image's media type)", "image/png",
              required=False),
    DataField("size", "integer", "实际返回的图片像素尺寸；640无高清头像时为140 "
              "(pixel size actually served: 140 when 640 falls back)", 40, required=False),
)


def _avatar_service(name: str, kind: Kind, param: str, description: str) -> Service:
    number = ("QQ号 (QQ number)", "376741929") if kind == "user" else \
        ("QQ群号 (QQ group number)", "123456789")
    return Service(
        name=name,
        description=description,
        rules=(
            Number(param, required=True, description=number[0]),
            Enum("size", default=100, options=SIZES,
                 description="头像大小，分别是：40/100/140/640 (pixels)"),
            Bool("output", default=True,
                 description="是否直接输出图片，否的话通过base64返回头像数据 "
                             "(true: the image bytes; false: base64 in data.img)"),
            FORMAT,
            DEFAULT,
        ),
        image=True,
        avatar_kind=kind,
        number_param=param,
        returns=AVATAR_RETURNS,
        errors=AVATAR_ERRORS,
        example=((param, number[1]), ("size", "40"), ("output", "0")),
    )


SITE_INDEX = Service(
    "App.Site.Index", "服务器信息：名称、版本与可用接口", needs_app=False,
    returns=(DataField("name", "string", "服务名 (server name)", "qqavatar"),
             DataField("version", "string", "版本 (version)", "0.1.0"),
             DataField("services", "array", "可用接口 (the services offered)",
                       ("App.Site.Index", "App.QQ.UserImage", "App.QQ.GroupImage"))),
)
USER_IMAGE = _avatar_service("App.QQ.UserImage", "user", "qq", "根据QQ号获取显示QQ头像")
GROUP_IMAGE = _avatar_service("App.QQ.GroupImage", "group", "group", "根据QQ群号获取显示QQ群头像")

SERVICES: dict[str, Service] = {}


def register(*services: Service) -> None:
    """Add services to the table (feature modules call this at import)."""
    for service in services:
        SERVICES[service.name.lower()] = service


register(SITE_INDEX, USER_IMAGE, GROUP_IMAGE)


def _link_service(name: str, avatar_service: Service, description: str) -> Service:
    """A private link to what `avatar_service` shows: its parameters, all but `output`.

    Parameters the avatar services gain (`format`, `default` …) are link parameters too.
    """
    return Service(
        name=name,
        description=description,
        rules=tuple(rule for rule in avatar_service.rules if rule.name != "output"),
        avatar_kind=avatar_service.avatar_kind,
        number_param=avatar_service.number_param,
        returns=(
            DataField("err_code", "integer", "操作码，0表示成功 (0: success)", 0),
            DataField("err_msg", "string", "错误提示信息 (why, when err_code ≠ 0)", ""),
            DataField("url", "string", "头像的私有链接，不含号码与app_key，可直接用于<img> "
                      "(a private avatar URL for <img>: neither the number nor app_key in it)",
                      "https://avatar.example.com/a/AU3kq0…"),
        ),
        example=tuple(pair for pair in avatar_service.example if pair[0] != "output"),
    )


USER_IMAGE_LINK = _link_service("App.QQ.UserImageLink", USER_IMAGE,
                                "生成QQ头像的私有链接（不暴露QQ号与app_key）")
GROUP_IMAGE_LINK = _link_service("App.QQ.GroupImageLink", GROUP_IMAGE,
                                 "生成QQ群头像的私有链接（不暴露群号与app_key）")
register(USER_IMAGE_LINK, GROUP_IMAGE_LINK)

# Members (SPEC §6). Register/Login ignore a uuid+token pair (a stale one must not block a
# new login); Check/Logout take it as their subject and answer with err_code, not ret 401.
_ERR_FIELDS = (
    DataField("err_code", "integer", "操作码，0表示成功，大于0表示业务失败 (0: success)", 0),
    DataField("err_msg", "string", "错误提示信息 (why, when err_code ≠ 0)", ""),
)
_EXAMPLE_LOGIN = (("username", "alice"), ("password", "e10adc3949ba59abbe56e057f20f883e"))
_EXAMPLE_SESSION = (("uuid", "9B5A1E9C3F0D4A2B8C7E6F5D4C3B2A19"), ("token", "7F" * 32))
USER_REGISTER = Service(
    "App.User.Register", "会员注册", rules=members.CREDENTIAL_RULES,
    session_guard=False, example=_EXAMPLE_LOGIN,
    returns=(*_ERR_FIELDS, DataField("uuid", "string", "新会员的UUID (the new member's uuid)",
                                     _EXAMPLE_SESSION[0][1])),
    errors=((1, members.NAME_TAKEN),),
)
USER_LOGIN = Service(
    "App.User.Login", "会员登录", rules=members.CREDENTIAL_RULES,
    session_guard=False, example=_EXAMPLE_LOGIN,
    returns=(*_ERR_FIELDS,
             DataField("uuid", "string", "会员UUID (the member's uuid)", _EXAMPLE_SESSION[0][1]),
             DataField("token", "string", "登录凭证，64位 (the session token)",
                       _EXAMPLE_SESSION[1][1])),
    errors=((1, members.LOGIN_FAILED),),
)
USER_CHECK = Service(
    "App.User.Check", "检测会员登录态", rules=members.SESSION_RULES,
    session_guard=False, example=_EXAMPLE_SESSION,
    returns=(*_ERR_FIELDS, DataField("is_login", "boolean", "是否已登录 (the session holds)",
                                     True)),
    errors=((1, members.NOT_LOGGED_IN),),
)
USER_LOGOUT = Service(
    "App.User.Logout", "会员退出登录", rules=members.SESSION_RULES,
    session_guard=False, example=_EXAMPLE_SESSION, returns=_ERR_FIELDS,
    errors=((1, members.NOT_LOGGED_IN),),
)
register(USER_REGISTER, USER_LOGIN, USER_CHECK, USER_LOGOUT)


def canonical_name(name: str) -> str:
    """`qq.userimage` → `App.qq.userimage` (the namespace is implied for two parts)."""
    return f"App.{name}" if name.count(".") == 1 else name


def resolve(name: str) -> Service:
    full = canonical_name(name)
    service = SERVICES.get(full.lower())
    if service is None:
        raise errors.unknown_service(full)
    return service
