"""Service handlers, `async def handler(runtime, call) -> Result`, one module per family, and
which one answers each service of the catalogue (`HANDLERS`, read by the gateway)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .. import catalog
from ..apicall import Call, Result
from ..components import Runtime
from . import users
from .avatars import avatar
from .link_services import avatar_link
from .site import site_index

Handler = Callable[[Runtime, Call], Awaitable[Result]]

HANDLERS: dict[str, Handler] = {
    catalog.SITE_INDEX.name: site_index,
    catalog.USER_IMAGE.name: avatar,
    catalog.GROUP_IMAGE.name: avatar,
    catalog.USER_IMAGE_LINK.name: avatar_link,
    catalog.GROUP_IMAGE_LINK.name: avatar_link,
    catalog.USER_REGISTER.name: users.register,
    catalog.USER_LOGIN.name: users.login,
    catalog.USER_CHECK.name: users.check,
    catalog.USER_LOGOUT.name: users.logout,
}
# A service without a handler would fail on its first call, not at start-up: fail here.
if set(HANDLERS) != {service.name for service in catalog.SERVICES.values()}:
    raise RuntimeError("every service of the catalogue needs a handler")
