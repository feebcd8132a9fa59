"""The parts `qqavatar doctor` checks, each turned into one row of its table.

Read-only: the database is neither created nor migrated (a SQLite file that does not
exist yet is reported, not made), and no secret is put in a row. FAIL marks a required
part (the database, an upstream template); Redis or the disk tier in trouble is a
warning, because the server runs on without them (degraded).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..avatars.upstream import Upstream
    from ..settings import Settings

OK, FAIL, WARN, OFF = "ok", "FAIL", "warn", "off"
KNOWN_NUMBER = "376741929"  # the README's example avatar
PROBE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Row:
    part: str
    status: str   # OK, FAIL (a required part failed), WARN or OFF (not configured)
    detail: str


def first_line(exc: BaseException) -> str:
    """The driver's own words (SQLAlchemy wraps them, with SQL and a link) on one line."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


def shown_url(url: str) -> str:
    """`url` without its password; nothing of it when it does not read as scheme://host
    (where a password would be cannot be known then)."""
    from urllib.parse import urlsplit

    from ..config import mask_url

    try:
        readable = bool(urlsplit(url).scheme and urlsplit(url).netloc)
    except ValueError:
        readable = False
    return mask_url(url) if readable else "(unreadable URL, not shown)"


def millis(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f} ms"


async def check_database(settings: Settings, timeout: float) -> Row:
    from ..store.db import current_revisions, make_engine, script_heads, select_one, sqlite_file

    url = settings.effective_database_url
    try:
        file = sqlite_file(url)
    except Exception:  # noqa: BLE001 — not a URL: where its password is cannot be known
        return Row("database", FAIL, "(not shown) SQLAlchemy cannot read this URL: "
                                     "dialect://user:password@host/database")
    shown = shown_url(url)
    try:
        if file is not None and not file.exists():
            return Row("database", OK, f"{shown}: no file yet, created on first start")
        engine = make_engine(url)
    except Exception as exc:  # noqa: BLE001 — any failure is the row's answer
        return Row("database", FAIL, f"{shown}: {first_line(exc)}")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await select_one(connection)
            answered = millis(started)
            current = await current_revisions(connection)  # none: nothing migrated yet
    except TimeoutError:
        return Row("database", FAIL, f"{shown}: no answer within {timeout:g} s")
    except Exception as exc:  # noqa: BLE001
        return Row("database", FAIL, f"{shown}: {first_line(exc)}")
    finally:
        await engine.dispose()
    heads = script_heads()
    level = ", ".join(sorted(current)) or "none"
    if current == heads:
        return Row("database", OK, f"{shown}: answered in {answered}; schema at head ({level})")
    if not current:
        return Row("database", WARN, f"{shown}: answered in {answered}; no schema yet, "
                                     "created on the next start")
    return Row("database", WARN, f"{shown}: answered in {answered}; schema at {level}, head "
                                 f"{', '.join(sorted(heads))}: migrated on the next start")


async def check_redis(settings: Settings, timeout: float) -> Row:
    if not settings.redis_url:
        return Row("redis", OFF, "not configured (QQAVATAR_REDIS_URL): this process only")
    from redis.asyncio import Redis

    shown = shown_url(settings.redis_url)
    started = time.perf_counter()
    try:
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=timeout,
                                socket_timeout=timeout)
        try:
            async with asyncio.timeout(timeout):
                await client.ping()
        finally:
            await client.aclose()
    except TimeoutError:
        detail = f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001
        detail = first_line(exc)
    else:
        return Row("redis", OK, f"{shown}: PONG in {millis(started)}")
    return Row("redis", WARN, f"{shown}: {detail} (the server runs without it, degraded)")


def probe_url(template: str) -> str:
    return template.format(qq=KNOWN_NUMBER, group=KNOWN_NUMBER, number=KNOWN_NUMBER,
                           size=PROBE_SIZE)


async def check_upstream(part: str, template: str, upstream: Upstream, *,
                         required: bool = True) -> Row:
    """One real fetch through the server's own client (same checks, same redirect rule)."""
    from ..config import mask_url

    started = time.perf_counter()
    url = template
    try:
        url = probe_url(template)
        fetched = await upstream.fetch(url)
    except Exception as exc:  # noqa: BLE001 — UpstreamError, or a template that cannot be used
        reason = str(getattr(exc, "detail", None) or first_line(exc))
        reason = reason.replace(url, mask_url(url))  # the URL's own words only: not the error's
        return Row(part, FAIL if required else WARN, f"{reason} (after {millis(started)})")
    return Row(part, OK, f"{mask_url(url)}: {fetched.content_type}, {len(fetched.body)} bytes "
                         f"in {millis(started)}")


async def check_upstreams(settings: Settings, timeout: float) -> list[Row]:
    """The user and group templates (required) and the user alternates (one failing is a
    warning: the server tries the next)."""
    import httpx

    from ..avatars.upstream import Upstream

    templates = [settings.upstream_user_url, settings.upstream_group_url,
                 *settings.upstream_user_alternates]
    try:
        hosts = {httpx.URL(probe_url(template)).host for template in templates}
    except Exception:  # noqa: BLE001 — a broken template gets its own row below
        hosts = set()
    upstream = Upstream(timeout=min(timeout, settings.upstream_timeout),
                        max_bytes=settings.upstream_max_bytes, hosts=hosts)
    try:
        return list(await asyncio.gather(
            check_upstream("upstream (users)", settings.upstream_user_url, upstream),
            check_upstream("upstream (groups)", settings.upstream_group_url, upstream),
            *(check_upstream(f"upstream (users, alternate {index})", template, upstream,
                             required=False)
              for index, template in enumerate(settings.upstream_user_alternates, start=1))))
    finally:
        await upstream.aclose()


def check_disk(settings: Settings) -> Row:
    from ..avatars.disk import disk_bound

    directory = settings.disk_cache_path
    if directory is None:
        return Row("disk tier", OFF, "off (QQAVATAR_DISK_CACHE_DIR=off): memory only")
    shown = directory.absolute()
    existing = shown
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # not made yet: the server creates it under here
    try:
        free = shutil.disk_usage(existing).free
        cap = disk_bound(directory, settings.disk_cache_max_bytes)
        # A directory made and removed again: the one sure test of "may write here".
        os.rmdir(tempfile.mkdtemp(prefix=".qqavatar-doctor-", dir=existing))
    except OSError as exc:
        return Row("disk tier", WARN, f"{shown}: {existing} is not writable ({exc.strerror}); "
                                      "the server runs on memory only")
    detail = f"{shown}: {free} bytes free ({_human(free)}), tier bound {_human(cap)}"
    if free < cap:
        return Row("disk tier", WARN, f"{detail}; less free than the bound")
    return Row("disk tier", OK, detail)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def check_admin_token(settings: Settings) -> Row:
    """Where the dashboard's token comes from; never the token."""
    from ..web.admin import access

    try:
        token = access.configured_token(settings)
    except (access.TokenTooShort, OSError, UnicodeError) as exc:
        return Row("admin token", WARN, f"dashboard off: {exc}")
    if token is None:
        return Row("admin token", OFF, f"not set, dashboard off: {access.TURN_ON}")
    where = "QQAVATAR_ADMIN_TOKEN" if settings.admin_token else str(access.token_path(settings))
    return Row("admin token", OK, f"set in {where} (not shown)")


def plain_rows(settings: Settings) -> list[Row]:
    """What needs no connection, as the server will use it."""
    public = Row("public URL", OK, settings.public_url) if settings.public_url else \
        Row("public URL", OFF, "not set: links use QQAVATAR_ALLOWED_HOSTS or the address "
                               "a connection reached")
    proxies = Row("trusted proxies", OK, settings.trusted_proxies) \
        if settings.trusted_proxies else \
        Row("trusted proxies", OFF, "none: X-Forwarded-For is not believed")
    return [check_admin_token(settings), public, proxies]


async def run_checks(settings: Settings, timeout: float) -> list[Row]:
    database, redis, upstreams = await asyncio.gather(
        check_database(settings, timeout), check_redis(settings, timeout),
        check_upstreams(settings, timeout))
    return [database, redis, *upstreams, check_disk(settings), *plain_rows(settings)]
