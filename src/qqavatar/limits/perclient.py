"""Per-client budgets: one address cannot spend what an app's other clients need.

An app's rate limit is the app's, but some of its parts are public: anyone may view its
private links, and App.User.Register/Login need only the (public) `app_key`. So the client
address (after the trusted-proxy rule; an IPv6 client by its /64, which one holder owns)
gets a budget of its own for those: link views and App.User.* calls per second, failed
logins per minute (per address and per username). A link view counts against the app's
rate limit per viewer, not in the app's own bucket. Over a budget only that client is
refused (ret 408); counters live where the app rate limits live (Redis when configured).
Cache misses get no budget but a fair turn at the upstream (`miss`, limits/fairgate.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from limits import RateLimitItemPerMinute, RateLimitItemPerSecond

from ..apicall import Call
from ..avatars.failures import TIMEOUT, UpstreamError
from ..avatars.upstream import MAX_IN_FLIGHT
from ..protocol import errors
from ..protocol.errors import ApiError
from ..proxies import client_bucket, client_host
from .fairgate import FairGate
from .limit_values import IPNetwork
from .rate import RateLimiter

NAMESPACE = "qqavatar-client"


@dataclass(frozen=True, slots=True)
class Budgets:
    """Per client address; 0 turns a budget off."""

    views: int = 50            # private link views per second
    members: int = 50          # App.User.* calls per second
    failed_logins: int = 10    # failed logins per minute per username (3x per address)


def too_many_logins() -> ApiError:
    return errors.client_error(408, "登录失败次数过多，请稍后再试")


def client_key(call: Call, trusted: Sequence[IPNetwork]) -> str:
    """The calling client, as budgets count it (the one rule: `proxies.client_bucket`)."""
    return client_bucket(client_host(call.request.client,
                                     call.request.headers.get("x-forwarded-for"), trusted))


class ClientLimits:
    def __init__(self, rate: RateLimiter, trusted: Sequence[IPNetwork],
                 budgets: Budgets = Budgets(), *, miss_wait: float = 10.0) -> None:
        self.rate = rate
        self.misses = FairGate(MAX_IN_FLIGHT)
        self.miss_wait = miss_wait  # s: the upstream's whole-fetch bound
        self.trusted = tuple(trusted)
        self.budgets = budgets
        self._views = RateLimitItemPerSecond(max(budgets.views, 1), namespace=NAMESPACE)
        self._members = RateLimitItemPerSecond(max(budgets.members, 1), namespace=NAMESPACE)
        failed = max(budgets.failed_logins, 1)
        self._failed_name = RateLimitItemPerMinute(failed, namespace=NAMESPACE)
        self._failed_address = RateLimitItemPerMinute(3 * failed, namespace=NAMESPACE)

    def client(self, call: Call) -> str:
        return client_key(call, self.trusted)

    async def admit_view(self, viewer: str) -> None:
        """Refuse a private link's view over its viewer's budget (`client_key`; the admission
        guard asks)."""
        if self.budgets.views and not await self.rate.count(self._views, "views:" + viewer):
            raise errors.rate_limited()

    async def admit_member_call(self, call: Call) -> None:
        """Refuse an App.User.* call over its client's budget (the members' handlers ask)."""
        if self.budgets.members and not await self.rate.count(
                self._members, "members:" + self.client(call)):
            raise errors.rate_limited()

    @asynccontextmanager
    async def miss(self, call: Call) -> AsyncIterator[None]:
        """A place at the upstream for this client's cache miss, in turn with the other
        clients (limits/fairgate.py); waiting longer than a fetch may take is a timeout."""
        try:
            async with self.misses.place(self.client(call), self.miss_wait):
                yield
        except TimeoutError:
            error = UpstreamError(TIMEOUT, detail="no place at the upstream in time")
            error.upstream_at_fault = False  # our queue, not the upstream
            raise error from None

    def _login_keys(self, call: Call, app_key: str, username: str) -> tuple[str, str]:
        return (f"login-address:{self.client(call)}",
                f"login-name:{app_key}:{username.casefold()}")

    async def check_login(self, call: Call, app_key: str, username: str) -> None:
        """Refuse a login while its address or username has failed too often lately."""
        if not self.budgets.failed_logins:
            return
        by_address, by_name = self._login_keys(call, app_key, username)
        if not (await self.rate.within(self._failed_address, by_address)
                and await self.rate.within(self._failed_name, by_name)):
            raise too_many_logins()

    async def login_failed(self, call: Call, app_key: str, username: str) -> None:
        if not self.budgets.failed_logins:
            return
        by_address, by_name = self._login_keys(call, app_key, username)
        await self.rate.count(self._failed_address, by_address)
        await self.rate.count(self._failed_name, by_name)
