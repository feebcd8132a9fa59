"""The service table: each YesApi service name with its parameter rules.

Names resolve as PhalApi does: case-insensitively, and a two-part name
(`QQ.UserImage`) means the `App` namespace (`App.QQ.UserImage`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .avatars import Kind
from .calls import Call, Result
from .handlers.avatars import avatar
from .handlers.site import site_index
from .protocol import errors
from .protocol.envelope import CALLBACK_PATTERN
from .protocol.params import Bool, Enum, Number, Pattern, Rule, Str
from .runtime import Runtime

Handler = Callable[[Runtime, Call], Awaitable[Result]]

SIZES = (40, 100, 140, 640)

# How the answer is shaped; the only rules of services that need no app.
ENVELOPE_RULES: tuple[Rule, ...] = (
    Bool("return_data", default=False),
    Pattern("callback", pattern=CALLBACK_PATTERN),
)
COMMON_RULES: tuple[Rule, ...] = (
    Str("app_key", required=True, min_len=32, max_len=32),
    Str("sign"),
    Str("uuid"),
    Str("token"),
    *ENVELOPE_RULES,
)


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    description: str
    handler: Handler
    rules: tuple[Rule, ...] = ()
    needs_app: bool = True       # Site.Index answers anyone
    image: bool = False          # answers with image bytes when `output` is true
    avatar_kind: Kind = "user"   # which avatars (the avatar services only)
    number_param: str = ""


def _avatar_service(name: str, kind: Kind, param: str, description: str) -> Service:
    return Service(
        name=name,
        description=description,
        handler=avatar,
        rules=(
            Number(param, required=True),
            Enum("size", default=100, options=SIZES),
            Bool("output", default=True),
        ),
        image=True,
        avatar_kind=kind,
        number_param=param,
    )


SITE_INDEX = Service("App.Site.Index", "服务器信息：名称、版本与可用接口", site_index,
                     needs_app=False)
USER_IMAGE = _avatar_service("App.QQ.UserImage", "user", "qq", "根据QQ号获取显示QQ头像")
GROUP_IMAGE = _avatar_service("App.QQ.GroupImage", "group", "group", "根据QQ群号获取显示QQ群头像")

SERVICES: dict[str, Service] = {}


def register(*services: Service) -> None:
    """Add services to the table (feature modules call this at import)."""
    for service in services:
        SERVICES[service.name.lower()] = service


register(SITE_INDEX, USER_IMAGE, GROUP_IMAGE)


def canonical_name(name: str) -> str:
    """`qq.userimage` → `App.qq.userimage` (the namespace is implied for two parts)."""
    return f"App.{name}" if name.count(".") == 1 else name


def resolve(name: str) -> Service:
    full = canonical_name(name)
    service = SERVICES.get(full.lower())
    if service is None:
        raise errors.unknown_service(full)
    return service
