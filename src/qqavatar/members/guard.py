"""The session guard: a `uuid`+`token` pair sent to a service must hold (SPEC §6)."""

from __future__ import annotations

import re

from ..apicall import Call
from ..protocol import errors
from .service import MemberService, MembersUnavailable

# What the server issues; anything else cannot hold and is refused without a lookup.
_UUID = re.compile(r"[0-9A-Fa-f]{32}")
_TOKEN = re.compile(r"[0-9A-Fa-f]{64}")


def well_formed(uuid: str, token: str) -> bool:
    return _UUID.fullmatch(uuid) is not None and _TOKEN.fullmatch(token) is not None


class SessionGuard:
    """Refuses a pair that does not hold (ret 401); marks the call's member when it does.

    Services with `session_guard=False` (the App.User.* family) handle the pair
    themselves, or ignore it, so a stale session never blocks a new login. While the
    database is away, a pair not in the session cache gets ret 500 (it cannot be checked).
    """

    def __init__(self, members: MemberService) -> None:
        self.members = members

    async def __call__(self, call: Call) -> None:
        if call.app is None or not call.service.session_guard:
            return
        uuid, token = call.values.get("uuid"), call.values.get("token")
        if uuid is None or token is None:  # the gateway has refused one without the other
            return
        try:
            holds = well_formed(uuid, token) and await self.members.holds(
                call.app.app_key, uuid, token)
        except MembersUnavailable:  # an uncached session cannot be checked: not the caller's fault
            raise errors.database_unavailable() from None
        if not holds:
            raise errors.session_expired()
        call.member = uuid.upper()

    def replayable(self, call: Call) -> bool:
        # A session may end at any moment: only calls without one are answered again.
        return call.values.get("uuid") is None and call.values.get("token") is None

    replay = None  # nothing to count
