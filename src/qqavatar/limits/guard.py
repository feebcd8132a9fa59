"""The limit guards, in YesApi's order after the signature check.

`AdmissionGuard`: a replayed strong-signed call (409) → a viewer over its own budget (408)
→ IP allow-list (402) → bound domains (406) → rate limit (408).
`QuotaGuard`: daily/monthly quota (413). It runs after every other guard (the
session guard included), so only calls that reach their handler use up quota.
An app without limits costs an attribute check or two and the quota increment (no
Redis round trip: only apps with a quota reserve their calls in Redis).

The IP allow-list and bound domains guard the use of the `app_key`. A private
link's view (`Gateway.handle_as`) presents no key: it is public by design, so
only the rate limit (counted per viewer: limits/perclient.py) and the quota apply to it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..apicall import Call
from ..protocol import errors
from ..protocol.sign import HMAC_SHA256
from ..proxies import client_address
from ..store.apps import AppRecord
from .limit_values import IPNetwork, host_of, in_networks, networks
from .nonces import NonceStore
from .perclient import ClientLimits, client_key
from .quota import QuotaBook
from .rate import RateLimiter


class AdmissionGuard:
    def __init__(self, rate: RateLimiter, trusted_proxies: Sequence[IPNetwork],
                 clients: ClientLimits | None = None, nonces: NonceStore | None = None) -> None:
        self.rate = rate
        self.trusted_proxies = tuple(trusted_proxies)
        self.clients = clients
        self.nonces = nonces

    async def __call__(self, call: Call) -> None:
        app = call.app
        if not isinstance(app, AppRecord):  # limits live on stored apps; none on Site.Index
            return
        params = call.request.params
        key_presented = "app_key" in params
        if app.sign_scheme == HMAC_SHA256 and key_presented and self.nonces is not None:
            # A replayed strong-signed call (its nonce passed the sign check) counts nowhere.
            await self.nonces.check(app.app_key, params["nonce"])
        # A private link's view (no app_key presented): its viewer, found once for both budgets.
        viewer = None if key_presented else client_key(call, self.trusted_proxies)
        if viewer is not None and self.clients is not None:
            await self.clients.admit_view(viewer)  # the viewer's own budget, first
        headers = call.request.headers
        if app.ip_allow and key_presented:
            address = client_address(call.request.client, headers.get("x-forwarded-for"),
                                     self.trusted_proxies)
            if address is None or not in_networks(address, networks(app.ip_allow)):
                raise errors.ip_forbidden()
        if app.domains and key_presented and host_of(headers.get("host", "")) not in app.domains:
            raise errors.unknown_app()  # YesApi's answer for a key used on a foreign domain
        if app.rate_limit is not None:
            # A view counts per viewer: viewers cannot use up the owner's own calls.
            key = app.app_key if viewer is None else f"{app.app_key}|{viewer}"
            if not await self.rate.allow(key, app.rate_limit):
                raise errors.rate_limited()

    def replayable(self, call: Call) -> bool:
        app = call.app
        # (A kept answer would answer a replayed strong-signed request.)
        return not isinstance(app, AppRecord) or not (
            app.ip_allow or app.domains or app.rate_limit is not None
            or app.sign_scheme == HMAC_SHA256)

    replay = None  # replayable calls are those this guard has nothing to check for


class QuotaGuard:
    def __init__(self, quotas: QuotaBook) -> None:
        self.quotas = quotas

    async def __call__(self, call: Call) -> None:
        app = call.app
        if not isinstance(app, AppRecord):
            return
        daily, monthly = app.daily_quota, app.monthly_quota
        if daily is None and monthly is None:
            self.quotas.count(app.app_key)  # counted, never refused; no await
        elif not await self.quotas.admit(app.app_key, daily, monthly):
            raise errors.quota_exhausted()

    def replayable(self, call: Call) -> bool:
        app = call.app
        return not isinstance(app, AppRecord) or (
            app.daily_quota is None and app.monthly_quota is None)

    def replay(self, call: Call) -> None:
        app = call.app
        if isinstance(app, AppRecord):
            self.quotas.count(app.app_key)  # as `__call__` does
