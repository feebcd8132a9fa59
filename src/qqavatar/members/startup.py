"""Start members: the service behind App.User.* and the session guard on every other call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..components import Runtime
from ..store.members import MemberStore
from .guard import SessionGuard
from .service import MemberService

if TYPE_CHECKING:
    from ..gateway import Gateway


async def start(runtime: Runtime, gateway: Gateway) -> None:
    if runtime.engine is None:
        raise RuntimeError("members need the database (runtime.engine)")
    members = MemberService(MemberStore(runtime.engine), token_ttl=runtime.settings.token_ttl)
    runtime.members = members
    gateway.guards.append(SessionGuard(members))
