"""App.QQ.UserImageLink and App.QQ.GroupImageLink: a private, embeddable URL of an avatar.

The link carries the avatar service's own parameters (everything but `output`), sealed
under the app's link key; `web.links` opens it and runs the avatar call for the app.
"""

from __future__ import annotations

from typing import Any

from ..apicall import Call, Result
from ..catalog import Service
from ..components import Runtime
from ..links.tokens import LinkTarget
from ..links.urls import link_url, public_base
from ..protocol import errors
from ..protocol.phpjson import dumps

NO_BASE_MSG = "无法确定链接地址，请设置QQAVATAR_PUBLIC_URL或QQAVATAR_ALLOWED_HOSTS"


def param_text(value: Any) -> str | None:
    """A parsed parameter back as the canonical text its rule reads (None: absent)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"no text form for {type(value).__name__}")


def link_target(service: Service, values: dict[str, Any]) -> LinkTarget:
    """What a link service's parsed parameters point at (defaults included, so equal
    requests give equal links however they were spelled)."""
    texts = {rule.name: param_text(values[rule.name]) for rule in service.rules}
    return LinkTarget.of(service.avatar_kind,
                         {name: text for name, text in texts.items() if text is not None})


async def avatar_link(runtime: Runtime, call: Call) -> Result:
    assert call.app is not None  # the link services need an app
    if runtime.links is None:
        raise errors.server_error("私有链接未启用")
    settings, request = runtime.settings, call.request
    allowed = settings.allowed_hosts.split(",") if settings.allowed_hosts else ()
    base = public_base(settings.public_url, allowed, request.scheme,
                       request.headers.get("host"), request.server)
    if base is None:  # no public URL set, and the server's address is unknown (a socket file)
        raise errors.server_error(NO_BASE_MSG)
    target = link_target(call.service, call.values)
    token = await runtime.links.seal(call.app.app_key, target)
    if token is None:  # the app was deleted a moment ago
        raise errors.unknown_app()
    return Result(data=dumps({"err_code": 0, "err_msg": "", "url": link_url(base, token, target)}))
