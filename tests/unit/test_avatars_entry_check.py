"""Copies read back from the cache tiers are checked as an upstream answer is: a hostile
entry (right checksum, wrong content) written into the real Redis or the disk tier is
dropped and the avatar fetched again, never served. (Redis: test_avatars_shared.py.)"""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from qqavatar.avatars.disk import DiskCache, DiskEntry
from qqavatar.avatars.entrycheck import STORED_MAX_BYTES, checked, entry_fault, sniff
from qqavatar.avatars.model import Key, etag_of
from qqavatar.fakeqlogo import RunningFake, avatar_bytes, spawn
from tests.unit.avatars_support import MiB, avatar_service

PNG = avatar_bytes("user", "10005", 0, 100)
HTML = b"<html><script>alert(document.cookie)</script></html>"


def image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (100, 100), (200, 30, 30)).save(out, fmt.upper())
    return out.getvalue()


def stored(body: bytes = PNG, content_type: str = "image/png", fmt: str = "png",
           size: int = 100) -> DiskEntry:
    return DiskEntry(body=body, content_type=content_type, is_default=False, size=size,
                     format=fmt, modified_at=1_600_000_000, expires_wall=time.time() + 600,
                     max_age=600, etag=etag_of(body))


# Each is a well-formed entry with a correct checksum: only its content gives it away.
HOSTILE = {
    "html": stored(HTML, "text/html; charset=utf-8", "png"),
    "svg": stored(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
                  "image/svg+xml", "png"),
    "html labelled png": stored(HTML),
    "png labelled jpeg": stored(PNG, "image/jpeg", "jpeg"),
    "format mismatch": stored(PNG, "image/png", "jpeg"),
    "header injection": stored(PNG, "image/png\r\nSet-Cookie: session=stolen"),
    "parameters": stored(PNG, "image/png; charset=utf-7"),
    "empty": stored(b""),
    "huge": stored(PNG + bytes(STORED_MAX_BYTES)),
    "pixel size": stored(size=100_000),
}
OVER_UPSTREAM_BOUND = stored(PNG + bytes(2 * MiB))  # avatar_service's upstream: 2 MiB


# --- the check ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpeg", "png", "gif", "webp", "bmp"])
def test_every_format_an_upstream_may_send_passes(fmt: str) -> None:
    body = image(fmt)
    assert sniff(body) == fmt
    entry = stored(body, f"image/{fmt}", fmt)
    assert entry_fault(entry) is None
    assert checked(entry) is entry


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_entries_are_refused(name: str, caplog: pytest.LogCaptureFixture) -> None:
    assert entry_fault(HOSTILE[name]) is not None
    assert checked(HOSTILE[name], where="test tier") is None
    assert "test tier: refusing a stored copy" in caplog.text


def test_the_upstream_bound_applies_when_given() -> None:
    assert entry_fault(stored(), max_bytes=len(PNG)) is None
    assert entry_fault(stored(), max_bytes=len(PNG) - 1) == f"{len(PNG)} bytes, not 1 to " \
                                                            f"{len(PNG) - 1}"
    assert checked(None) is None


# --- the tiers, for real ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    with spawn() as running:
        yield running


def number() -> str:
    return f"{10_000_000 + secrets.randbelow(10**8)}5"  # ends in 5: a PNG avatar


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["html", "svg", "html labelled png", "header injection"])
async def test_a_hostile_file_in_the_disk_tier_is_not_served(
        fake: RunningFake, tmp_path: Path, name: str) -> None:
    n = number()
    key: Key = ("user", n, 100, "")
    planted = DiskCache(tmp_path, 10**9)
    planted.save(key, HOSTILE[name])  # a file in the tier's own format, checksum and all
    await planted.flush()
    disk = DiskCache(tmp_path, 10**9)
    assert disk.read(key) == HOSTILE[name]  # the file is there and reads back as written
    async with avatar_service(fake, disk=disk) as svc:
        served = await svc.fetch("user", n, 100)
        assert served.cache == "MISS"
        assert served.avatar.body == avatar_bytes("user", n, 0, 100)
        await disk.flush()
    rewritten = disk.read(key)
    assert rewritten is not None and rewritten.body == served.avatar.body
    assert fake.count("user", n, 100) == 1


@pytest.mark.anyio
async def test_a_sound_file_in_the_disk_tier_is_served_without_the_upstream(
        fake: RunningFake, tmp_path: Path) -> None:
    n = number()
    body = avatar_bytes("user", n, 0, 100)
    disk = DiskCache(tmp_path, 10**9)
    disk.save(("user", n, 100, ""), replace(stored(body), etag=etag_of(body)))
    await disk.flush()
    async with avatar_service(fake, disk=disk) as svc:
        served = await svc.fetch("user", n, 100)
    assert (served.cache, served.avatar.body) == ("HIT", body)
    assert fake.count("user", n, 100) == 0
