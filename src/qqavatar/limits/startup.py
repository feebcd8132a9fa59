"""Start the per-app limits: two features, so the session guard can run between them.

`start` adds the admission guard (the stronger sign's replay window, limits/nonces.py; a
viewer's own budget, limits/perclient.py; IP, domain, rate) and the quota book (exact across
servers through Redis when `runtime.redis` is set);
`start_quota` adds the quota guard, which must come after every other guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..components import Runtime
from ..store.quota import QuotaStore
from .guard import AdmissionGuard, QuotaGuard
from .limit_values import networks, split_list
from .nonces import NonceStore
from .perclient import Budgets, ClientLimits
from .quota import QuotaBook
from .rate import RateLimiter, open_storage, storage_uri
from .redis_quota import SharedQuotas

if TYPE_CHECKING:
    from ..gateway import Gateway


async def start(runtime: Runtime, gateway: Gateway) -> None:
    if runtime.engine is None:
        raise RuntimeError("quotas need the database (runtime.engine)")
    settings = runtime.settings
    shared = SharedQuotas(runtime.redis) if runtime.redis is not None else None
    quotas = QuotaBook(QuotaStore(runtime.engine), shared=shared)
    await quotas.start()  # loads today's and this month's counts before the first call
    runtime.closers.append(quotas.stop)  # stores the last counts at shutdown
    runtime.quotas = quotas
    trusted = networks(tuple(split_list(settings.trusted_proxies)))
    timeout = settings.redis_timeout
    uri = storage_uri(settings.rate_limit_storage, settings.redis_url)
    rate = RateLimiter(open_storage(uri, timeout=timeout), timeout=timeout)
    runtime.client_limits = ClientLimits(rate, trusted, Budgets(
        views=settings.client_view_rate, members=settings.client_member_rate,
        failed_logins=settings.client_failed_logins), miss_wait=2 * settings.upstream_timeout)
    # One guard for all of it: every guard costs each call on the hot path.
    gateway.guards.append(AdmissionGuard(rate, trusted, runtime.client_limits,
                                         NonceStore(runtime.redis)))


async def start_quota(runtime: Runtime, gateway: Gateway) -> None:
    if runtime.quotas is None:
        raise RuntimeError("limits.feature.start must run before start_quota")
    gateway.guards.append(QuotaGuard(runtime.quotas))
