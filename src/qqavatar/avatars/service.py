"""The avatar façade: memory → disk → Redis → single-flight → qlogo (alternates, breakers).

Freshness policy (docs/guide.md, "Cache policy"):

- A real avatar is fresh for `ttl` (never longer than qlogo's max-age), Tencent's default
  image for `default_ttl`. Fresh entries are answered from memory: `X-Cache: HIT`.
- Expired, up to `stale_ttl` past expiry: answered at once with the old copy (`STALE`)
  while ONE background refresh runs; the first answer with the refreshed copy says
  `REVALIDATED`, later ones `HIT`.
- Expired longer than that: the caller waits for the refresh (`REVALIDATED`); when it
  fails, a copy up to `stale_if_error_ttl` past expiry is answered instead (`STALE`,
  err_code 0). No copy at all: the caller waits for the fetch (`MISS`).
- A failure is remembered per avatar for `negative_ttl`: asked again meanwhile, the same
  err_code comes back at once (`HIT`) and the upstream is left alone.
- Each upstream template has a circuit breaker (breaker.py). Templates are tried in turn
  (user avatars may have alternates), skipping those whose breaker is open, within one
  deadline; when every one is open the answer is -5 at once.
- With Redis (`share_through`, redis_tier.py) a copy missing from memory and disk is read
  from the shared tier (a fresh one is a `HIT`), and a fetch is made by one server for
  all: the others wait for its copy or its failure. Redis down: as without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from time import monotonic
from time import time as wall_clock
from typing import TYPE_CHECKING

import httpx

from .. import metric_hooks
from .breaker import CircuitBreaker, CircuitState
from .cache import AvatarCache
from .disk import DiskCache, DiskEntry, disk_bound
from .entrycheck import checked
from .failure_memory import FailureMemory
from .failures import INVALID, UNAVAILABLE, NoAvatar, UpstreamError
from .flight import SingleFlight
from .identicon import render as render_identicon
from .images import MEDIA_TYPES, ImageInfo, InvalidImage, load_codecs, transcode, validate
from .model import Avatar, Key, Kind, Served, Source, etag_of, make_avatar
from .redis_tier import SharedTier
from .upstream import Fetched, Upstream

if TYPE_CHECKING:
    from ..redislink import RedisLink
    from ..settings import Settings

log = logging.getLogger(__name__)

# Decoding a 140 px avatar takes ~0.1-0.3 ms: cheaper inline than a thread hop (~0.12 ms).
# A 640 px PNG takes ~5 ms, which would stall every other request: that goes to a thread.
INLINE_DECODE_SIZE = 140
INLINE_DECODE_BYTES = 32 * 1024

# qlogo answers s=640 with its default image for users who never uploaded an HD avatar,
# while 40/100/140 show the real one (all three are made from one upload, so when 140 is
# the default, the smaller ones are too): 140 is the size to fall back to.
HD_SIZE = 640
HD_FALLBACK_SIZE = 140

IDENTICON = "identicon."  # variant prefix of generated defaults: "identicon.png"
DEFAULTS = ("qq", "404", "identicon")
_STATE_ORDER: dict[CircuitState, int] = {"closed": 0, "half-open": 1, "open": 2}


def _now() -> float:
    return monotonic()  # looked up at call time, so tests can swap the module's clock


class AvatarService:
    """Avatars by (kind, number, size) and optionally a format and a default policy.

    Bound to the event loop it is first used on (it owns one `httpx.AsyncClient`).
    """

    def __init__(self, *, user_url: str, group_url: str, timeout: float, max_bytes: int,
                 cache_max_bytes: int, ttl: int = 86400, default_ttl: int = 600,
                 negative_ttl: float = 30, stale_ttl: float = 86400,
                 stale_if_error_ttl: float = 7 * 86400, user_alternates: Sequence[str] = (),
                 circuit_threshold: int = 10, circuit_cooldown: float = 30,
                 disk: DiskCache | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._templates: dict[Kind, list[str]] = {
            "user": list(dict.fromkeys([user_url, *user_alternates])),
            "group": [group_url],
        }
        self._breakers: dict[str, CircuitBreaker] = {}
        for templates in self._templates.values():
            for template in templates:
                _format(template, "10001", 100)  # a broken template fails at startup
                self._breakers[template] = CircuitBreaker(circuit_threshold, circuit_cooldown,
                                                          clock=_now)
        self.ttl = ttl
        self.default_ttl = default_ttl
        self.stale_ttl = stale_ttl
        self.stale_if_error_ttl = stale_if_error_ttl
        self.cache = AvatarCache(cache_max_bytes)
        self.negative = FailureMemory(negative_ttl)
        self.disk = disk
        self.upstream_requests = 0
        # Redirects may lead to any template's host (an alternate's too), and nowhere else.
        hosts = {httpx.URL(_format(template, "10001", 100)).host for template in self._breakers}
        self._upstream = Upstream(timeout=timeout, max_bytes=max_bytes, hosts=hosts,
                                  transport=transport)
        self._flights: SingleFlight[Key, Avatar] = SingleFlight()
        self.shared: SharedTier | None = None
        self._shared_reads: SingleFlight[Key, Avatar | None] = SingleFlight(counted=False)

    def share_through(self, link: RedisLink) -> None:
        """Use Redis as a tier shared with every other server, and fetch once for all."""
        # A holder's work: the download (every template, within one deadline) and, for a
        # 640 default, the 140 fallback's: two deadlines and a second to decode. Its
        # waiters wait as long before they fetch for themselves.
        self.shared = SharedTier(link, keep_after_expiry=max(self.stale_ttl,
                                                             self.stale_if_error_ttl),
                                 lock_ttl=2 * self._upstream.total_timeout + 1,
                                 max_bytes=self._upstream.max_bytes)

    @classmethod
    def from_settings(cls, settings: Settings) -> AvatarService:
        disk = None
        directory = settings.disk_cache_path
        if directory is not None:
            disk = DiskCache(directory, disk_bound(directory, settings.disk_cache_max_bytes))
        return cls(
            user_url=settings.upstream_user_url,
            group_url=settings.upstream_group_url,
            user_alternates=settings.upstream_user_alternates,
            timeout=settings.upstream_timeout,
            max_bytes=settings.upstream_max_bytes,
            cache_max_bytes=settings.cache_max_bytes,
            ttl=settings.cache_ttl,
            default_ttl=settings.cache_default_ttl,
            negative_ttl=settings.negative_ttl,
            stale_ttl=settings.stale_ttl,
            stale_if_error_ttl=settings.stale_if_error_ttl,
            circuit_threshold=settings.circuit_threshold,
            circuit_cooldown=settings.circuit_cooldown,
            disk=disk,
        )

    # --- the hot path -----------------------------------------------------------------------

    def cached(self, kind: Kind, number: str, size: int, fmt: str = "",
               default: str = "qq") -> Avatar | None:
        """Synchronous, O(1): the fresh answer from memory, or None (then `await fetch`).

        `fmt` "" serves the upstream's own format; `default` is what a number without an
        avatar of its own gets (`qq`: Tencent's image)."""
        now = monotonic()
        base = self.cache.get((kind, number, size, ""), now)
        if base is None or base.revalidated:
            return None  # the first answer after a refresh says REVALIDATED: slow path
        if base.is_default and default != "qq":
            if default != "identicon":
                return None
            derived = self.cache.get((kind, number, size, IDENTICON + (fmt or "png")), now)
        elif fmt and fmt != base.format:
            derived = self.cache.get((kind, number, size, fmt), now)
        else:
            return base
        return derived if derived is not None and derived.source == base.etag else None

    def holds(self, source: Source) -> bool:
        """Would `cached(*source.lookup)` still answer `source.avatar`, its max-age unspent?"""
        now = monotonic()
        if now >= source.until:
            return False
        if source.key is not None:  # a plain lookup answers the entry itself, if fresh
            return self.cache.get(source.key, now) is source.avatar
        return self.cached(*source.lookup) is source.avatar

    def fetching(self, kind: Kind, number: str, size: int) -> bool:
        """Is this avatar being fetched right now (a miss for it would join that fetch)?"""
        return (kind, number, size, "") in self._flights

    # --- the slow path ----------------------------------------------------------------------

    async def get(self, kind: Kind, number: str, size: int, fmt: str = "",
                  default: str = "qq") -> Avatar:
        """`fetch` without the where-from: the avatar, or raises AvatarError."""
        return (await self.fetch(kind, number, size, fmt, default)).avatar

    async def fetch(self, kind: Kind, number: str, size: int, fmt: str = "",
                    default: str = "qq") -> Served:
        """The answer and where it came from; raises `UpstreamError` (no avatar to give)
        or `NoAvatar` (`default="404"` and the number has none of its own). Concurrent
        misses for one key share ONE upstream request (single-flight)."""
        key: Key = (kind, number, size, "")
        served = await self._base(key)
        try:
            return await self._shaped(key, served, fmt, default)
        except InvalidImage as exc:  # a transcode of a copy that does not decode
            log.warning("avatar %s: its copy does not decode (%s): fetching it again", key, exc)
        served = await self._fetch_again(key, served.avatar)
        try:
            return await self._shaped(key, served, fmt, default)
        except InvalidImage as exc:
            error = UpstreamError(INVALID, detail=f"avatar {key}, fetched again: {exc}")
            raise error.copy(upstream_fetch=served.upstream_fetch) from None

    async def _shaped(self, key: Key, served: Served, fmt: str, default: str) -> Served:
        """`served` (the upstream's own image) as asked: in `fmt`, or by the default policy."""
        kind, number, size, _ = key
        base = served.avatar
        if base.is_default and default != "qq":
            if default == "404":
                error = NoAvatar(kind)
                error.cache, error.upstream_fetch = served.cache, served.upstream_fetch
                raise error
            shape = fmt or "png"
            render = partial(render_identicon, f"{kind}:{number}", size, shape)
            avatar = await self._derived((kind, number, size, IDENTICON + shape), base, render,
                                         size, shape)
        elif fmt and fmt != base.format:
            avatar = await self._derived((kind, number, size, fmt), base,
                                         partial(transcode, base.body, fmt), base.size, fmt)
        else:
            return served
        return Served(avatar, served.cache, served.upstream_fetch)

    @property
    def circuit_state(self) -> CircuitState:
        """`closed` when every kind of avatar has an upstream to ask; `open` when some kind
        has none (every template of it failing fast); `half-open` while probing."""
        worst: CircuitState = "closed"
        for templates in self._templates.values():
            best = min((self._breakers[t].state for t in templates), key=_STATE_ORDER.__getitem__)
            if _STATE_ORDER[best] > _STATE_ORDER[worst]:
                worst = best
        return worst

    async def warm_up(self) -> None:
        """Load now what the first fetches would load (Pillow's codecs, the HTTP client's
        async backend), so that neither the first callers' latency nor the memory growth
        seen under load includes one-time imports."""
        await asyncio.to_thread(load_codecs)
        await self._upstream.warm_up()

    async def aclose(self) -> None:
        await self._flights.aclose()
        await self._shared_reads.aclose()
        await self._upstream.aclose()
        if self.disk is not None:
            await self.disk.aclose()

    def url(self, kind: Kind, number: str, size: int) -> str:
        """The (first) upstream URL for one avatar."""
        return self.urls(kind, number, size)[0]

    def urls(self, kind: Kind, number: str, size: int) -> list[str]:
        """The upstream URLs for one avatar, in the order they are tried."""
        assert number.isascii() and number.isdigit(), number  # never let input shape a URL
        return [_format(template, number, size) for template in self._templates[kind]]

    # --- freshness --------------------------------------------------------------------------

    async def _base(self, key: Key) -> Served:
        """The upstream's own image for `key`, following the freshness policy."""
        now = monotonic()
        entry = self.cache.lookup(key)
        if entry is None and self.disk is not None:
            entry = self._from_disk(key)
        if entry is None and self.shared is not None:
            entry = await self._shared_reads.run(key, partial(self._from_shared, key))
            now = monotonic()
        if entry is not None:
            late = now - entry.expires_at
            if late < 0:
                if entry.revalidated:
                    return Served(self._announce(key, entry), "REVALIDATED")
                return Served(entry, "HIT")
            if late < self.stale_ttl:
                return Served(entry, "STALE", self._refresh_in_background(key))
            if late >= self.stale_if_error_ttl:
                self.cache.discard(key)  # too old to answer with, whatever happens
                entry = None
        failure = self.negative.recall(key, now)
        if failure is not None:
            if entry is not None:  # stale-if-error, the failure being remembered
                return Served(entry, "STALE")
            raise failure.copy(cache="HIT")
        try:
            fresh = await self._fetch_now(key)
        except UpstreamError as exc:
            if entry is not None:
                log.info("avatar %s: upstream failed (%s), answering the stale copy", key, exc)
                return Served(entry, "STALE", True)
            raise _as_answered(exc) from None
        return Served(fresh, "MISS" if entry is None else "REVALIDATED", True)

    async def _fetch_again(self, key: Key, bad: Avatar) -> Served:
        """A fresh copy in place of `bad`, one that passed the stored checks (entrycheck.py
        decodes nothing) but does not decode: dropped from memory and Redis, fetched again
        (the fresh copy overwrites the disk tier's file; a failure removes it)."""
        current = self.cache.peek(key)
        if current is not None and current.etag != bad.etag:
            return Served(current, "HIT")  # replaced meanwhile (another caller's refetch)
        self.cache.discard(key)
        if self.shared is not None:
            await self.shared.discard(key)
        try:
            fresh = await self._fetch_now(key)
        except UpstreamError as exc:
            if self.disk is not None:
                self.disk.discard(key)
            raise _as_answered(exc) from None
        return Served(fresh, "MISS", True)

    async def _fetch_now(self, key: Key) -> Avatar:
        """A fresh copy from the upstream, joining a fetch of `key` already under way."""
        fresh = await self._flights.run(key, partial(self._refresh, key))
        if fresh.revalidated:  # joined a background refresh
            fresh = self._announce(key, fresh)
        return fresh

    def _announce(self, key: Key, avatar: Avatar) -> Avatar:
        """Mark a refreshed copy as answered with: later answers are plain HITs."""
        plain = replace(avatar, revalidated=False)
        if self.cache.peek(key) is avatar:
            self.cache.put(key, plain)
        return plain

    def _refresh_in_background(self, key: Key) -> bool:
        """Start ONE refresh of `key` unless one runs or it failed a moment ago."""
        if key in self._flights or self.negative.recall(key, monotonic()) is not None:
            return False
        return self._flights.start(key, partial(self._refresh, key, background=True))

    async def _refresh(self, key: Key, background: bool = False) -> Avatar:
        try:
            if self.shared is None:
                avatar = await self._fetch(key)
            else:
                fetched = await self.shared.fetch_once(key, partial(self._fetch, key),
                                                       self._disk_entry)
                avatar = self._restore(fetched) if isinstance(fetched, DiskEntry) else fetched
        except UpstreamError as exc:
            # The upstream's verdict on this avatar, not ours (a breaker failing fast, a
            # queue too long): those end by themselves.
            if exc.failure is not UNAVAILABLE and exc.upstream_at_fault:
                self.negative.remember(key, exc, monotonic())
            if background:
                log.info("avatar %s: background refresh failed: %s", key, exc)
            raise
        self.negative.forget(key)
        if background:
            avatar = replace(avatar, revalidated=True)
        if avatar.max_age > 0:
            self.cache.put(key, avatar)
            if self.disk is not None:
                self.disk.save(key, self._disk_entry(avatar))
        return avatar

    async def _fetch(self, key: Key) -> Avatar:
        """The upstream's answer for `key` (for a 640 default, the 140 fallback's)."""
        kind, number, size, _ = key
        avatar = await self._download(key, self.cache.peek(key))
        if size == HD_SIZE and avatar.is_default:
            avatar = await self._hd_fallback(kind, number, avatar)
        return avatar

    async def _hd_fallback(self, kind: Kind, number: str, hd: Avatar) -> Avatar:
        """The largest real avatar when 640 is qlogo's default; `hd` when there is none.

        It is kept under the 640 key as long as the default would have been: whether an
        HD avatar has appeared is asked again after `default_ttl`."""
        try:
            smaller = (await self._base((kind, number, HD_FALLBACK_SIZE, ""))).avatar
        except UpstreamError:
            return hd
        if smaller.is_default:
            return hd
        return replace(smaller, expires_at=hd.expires_at, max_age=hd.max_age, revalidated=False)

    async def _derived(self, key: Key, base: Avatar, render: Callable[[], bytes], size: int,
                       fmt: str) -> Avatar:
        """A copy of `base` made by `render` (a transcode, an identicon), made once per
        version of `base`, in a worker thread; it expires with `base`."""
        existing = self.cache.lookup(key)
        if existing is not None and existing.source == base.etag:
            if existing.expires_at != base.expires_at:  # base was refreshed, same bytes
                existing = replace(existing, expires_at=base.expires_at, max_age=base.max_age)
                if base.max_age > 0:
                    self.cache.put(key, existing)
            return existing

        async def work() -> Avatar:
            body = await asyncio.to_thread(render)
            avatar = make_avatar(body, MEDIA_TYPES[fmt], is_default=base.is_default,
                                 lifetime=base.max_age, now=0, expires_at=base.expires_at,
                                 size=size, format=fmt, modified_at=base.modified_at,
                                 source=base.etag)
            if base.max_age > 0:
                self.cache.put(key, avatar)
            return avatar

        return await self._flights.run(key, work)

    # --- the upstream -----------------------------------------------------------------------

    async def _download(self, key: Key, previous: Avatar | None) -> Avatar:
        """Try each template of `key`'s kind in turn, within one deadline."""
        kind, number, size, _ = key
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._upstream.total_timeout
        last: UpstreamError | None = None
        for template in self._templates[kind]:
            breaker = self._breakers[template]
            if not breaker.allow():
                continue
            url = _format(template, number, size)
            self.upstream_requests += 1
            started = loop.time()
            try:
                fetched = await self._upstream.fetch(url, deadline)
                info = await self._validate(fetched, size, url)
            except UpstreamError as exc:
                metric_hooks.upstream_fetched(loop.time() - started, int(exc.failure))
                if not exc.upstream_at_fault:  # we are the bottleneck, not this upstream
                    breaker.abandon()
                    raise
                if exc.host_fault:
                    breaker.failure(key)
                else:  # a bad answer about this avatar alone (a 404): the host is up
                    breaker.success()
                if breaker.state != "closed":
                    log.warning("upstream %s: circuit open for %.0f s after failures, "
                                "the last: %s", template, breaker.retry_after, exc)
                last = exc
                if loop.time() >= deadline:
                    break
                continue
            except BaseException:
                breaker.abandon()
                raise
            metric_hooks.upstream_fetched(loop.time() - started, 0)
            breaker.success()
            return self._make(fetched, info, previous)
        if last is None:
            raise UpstreamError(UNAVAILABLE, detail=f"every {kind} upstream is failing fast")
        raise last

    async def _validate(self, fetched: Fetched, size: int, url: str) -> ImageInfo:
        try:
            if size <= INLINE_DECODE_SIZE and len(fetched.body) <= INLINE_DECODE_BYTES:
                return validate(fetched.body, fetched.content_type)
            return await asyncio.to_thread(validate, fetched.body, fetched.content_type)
        except InvalidImage as exc:
            raise UpstreamError(INVALID, detail=f"{url}: {exc}") from None

    def _make(self, fetched: Fetched, info: ImageInfo, previous: Avatar | None) -> Avatar:
        is_default = fetched.x_info.startswith("notexist")
        etag = etag_of(fetched.body)
        now_wall = int(wall_clock())
        if fetched.last_modified is not None:
            modified = min(fetched.last_modified, now_wall)
        elif previous is not None and previous.etag == etag:
            modified = previous.modified_at  # unchanged: If-Modified-Since keeps matching
        else:
            modified = now_wall
        return make_avatar(fetched.body, info.content_type, is_default=is_default,
                           lifetime=self._lifetime(fetched, is_default), now=monotonic(),
                           size=info.size, format=info.format, modified_at=modified, etag=etag)

    def _lifetime(self, fetched: Fetched, is_default: bool) -> int:
        # The default image comes with `no-cache`; it is the same picture for everyone and
        # cheap to keep for a while, so our own default_ttl rules. A real avatar is never
        # kept longer than qlogo allows.
        if is_default:
            return self.default_ttl
        if fetched.max_age is not None:
            return min(self.ttl, fetched.max_age)
        return self.ttl

    # --- the disk tier ----------------------------------------------------------------------

    def _from_disk(self, key: Key) -> Avatar | None:
        """Read inline (disk.py: cheaper than a thread hop), so nothing lands meanwhile."""
        assert self.disk is not None
        entry = checked(self.disk.read(key), self._upstream.max_bytes, "disk tier")
        if entry is None:
            return None
        avatar = self._restore(entry)
        if monotonic() - avatar.expires_at >= max(self.stale_ttl, self.stale_if_error_ttl):
            self.disk.discard(key)
            return None
        self.cache.put(key, avatar)
        return avatar

    def _restore(self, entry: DiskEntry) -> Avatar:
        """An avatar from a stored entry, its wall-clock expiry on our monotonic clock."""
        now = monotonic()
        return make_avatar(entry.body, entry.content_type, is_default=entry.is_default,
                           lifetime=entry.max_age, now=now,
                           expires_at=now + (entry.expires_wall - wall_clock()),
                           size=entry.size, format=entry.format,
                           modified_at=entry.modified_at, etag=entry.etag)

    # --- the shared tier --------------------------------------------------------------------

    async def _from_shared(self, key: Key) -> Avatar | None:
        assert self.shared is not None
        entry = await self.shared.load(key)
        current = self.cache.peek(key)
        if current is not None or entry is None:
            return current  # fetched meanwhile: memory is newer
        avatar = self._restore(entry)
        late = monotonic() - avatar.expires_at
        if late >= max(self.stale_ttl, self.stale_if_error_ttl):
            return None  # Redis lets it go by itself
        metric_hooks.shared_lookup("hit" if late < 0 else "stale")
        self.cache.put(key, avatar)
        if self.disk is not None:
            self.disk.save(key, entry)
        return avatar

    def _disk_entry(self, avatar: Avatar) -> DiskEntry:
        return DiskEntry(
            body=avatar.body, content_type=avatar.content_type, is_default=avatar.is_default,
            size=avatar.size, format=avatar.format, modified_at=avatar.modified_at,
            expires_wall=wall_clock() + (avatar.expires_at - monotonic()),
            max_age=avatar.max_age, etag=avatar.etag,
        )


def _format(template: str, number: str, size: int) -> str:
    # Both names in both templates, so a template may say {qq} or {group} (or {number}).
    return template.format(qq=number, group=number, number=number, size=size)


def _as_answered(exc: UpstreamError) -> UpstreamError:
    """A fetch's failure as this caller's answer says it: an upstream request was made,
    unless the upstream was not even tried (the breaker open)."""
    return exc.copy(upstream_fetch=exc.failure is not UNAVAILABLE)
