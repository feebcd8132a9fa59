"""The disk tier: files on a real directory, atomic writes, corruption, the bound, restarts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qqavatar.avatars import AvatarService
from qqavatar.avatars import service as service_module
from qqavatar.avatars.disk import DiskCache, DiskEntry
from qqavatar.avatars.model import Key, etag_of
from qqavatar.fakeqlogo import RunningFake, avatar_bytes, spawn
from tests.unit.avatars_support import run


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    with spawn() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_fake(fake: RunningFake) -> None:
    fake.reset()


def key(n: int, size: int = 100) -> Key:
    return ("user", str(10000 + n), size, "")


def entry(body: bytes = b"\x89PNG fake body", *, expires_in: float = 600) -> DiskEntry:
    return DiskEntry(body=body, content_type="image/png", is_default=False, size=100,
                     format="png", modified_at=1_600_000_000, expires_wall=time.time() + expires_in,
                     max_age=600, etag=etag_of(body))


def save_all(disk: DiskCache, items: list[tuple[Key, DiskEntry]]) -> None:
    async def main() -> None:
        for k, e in items:
            disk.save(k, e)
            await disk.flush()
    asyncio.run(main())


def load(disk: DiskCache, k: Key) -> DiskEntry | None:
    return asyncio.run(disk.load(k))


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_an_entry_round_trips_through_one_file(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, 1_000_000)
    stored = entry()
    save_all(disk, [(key(1), stored)])
    assert files(tmp_path) == ["user/01/10001-100.avatar"]  # no temporary file left behind
    assert load(disk, key(1)) == stored
    assert load(disk, key(2)) is None
    assert disk.total_bytes == (tmp_path / "user/01/10001-100.avatar").stat().st_size


def test_a_rewrite_replaces_the_file_and_keeps_the_count_exact(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, 1_000_000)
    save_all(disk, [(key(1), entry(b"a" * 100)), (key(1), entry(b"b" * 300))])
    assert load(disk, key(1)).body == b"b" * 300  # type: ignore[union-attr]
    assert disk.total_bytes == sum(p.stat().st_size for p in tmp_path.rglob("*.avatar"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "other key", "empty"])
def test_a_corrupt_file_is_removed_and_ignored(tmp_path: Path, damage: str) -> None:
    disk = DiskCache(tmp_path, 1_000_000)
    save_all(disk, [(key(1), entry(b"x" * 500)), (key(2), entry())])
    path = disk.path(key(1))
    raw = path.read_bytes()
    if damage == "flip":
        raw = raw[:-10] + bytes([raw[-10] ^ 0xFF]) + raw[-9:]
    elif damage == "truncate":
        raw = raw[:-100]
    elif damage == "garbage":
        raw = b"\x00\x01 not a header\n" + raw
    elif damage == "other key":
        raw = disk.path(key(2)).read_bytes()
    else:
        raw = b""
    path.write_bytes(raw)
    assert load(disk, key(1)) is None
    assert not path.exists()
    assert disk.corrupt == 1
    assert load(disk, key(2)) is not None


def test_the_bound_evicts_the_least_recently_used_files(tmp_path: Path) -> None:
    body = b"z" * 1000
    disk = DiskCache(tmp_path, 5 * 1250)  # room for five files of ~1230 bytes
    save_all(disk, [(key(n), entry(body)) for n in range(4)])
    # Age them: file n was last used n seconds after the first.
    for n in range(4):
        os.utime(disk.path(key(n)), (1000 + n, 1000 + n))
    assert load(disk, key(0)) is not None  # a read is a use: key 0 is now the newest
    save_all(disk, [(key(n), entry(body)) for n in range(4, 7)])
    # The sixth file went over the bound: the oldest went until 90 % of it was left.
    kept = {n for n in range(7) if disk.path(key(n)).exists()}
    assert kept == {0, 3, 4, 5, 6}
    assert disk.evictions == 2
    assert disk.total_bytes == sum(p.stat().st_size for p in tmp_path.rglob("*.avatar"))
    assert disk.total_bytes <= disk.max_bytes


def test_a_scan_counts_what_is_there_and_sweeps_crashed_writes(tmp_path: Path) -> None:
    first = DiskCache(tmp_path, 1_000_000)
    save_all(first, [(key(n), entry()) for n in range(3)])
    leftover = tmp_path / "user" / "01" / ".10001-100.avatar.123.456.tmp"
    leftover.write_bytes(b"half a write")
    os.utime(leftover, (1000, 1000))
    fresh_tmp = tmp_path / "user" / "01" / ".10001-100.avatar.123.789.tmp"
    fresh_tmp.write_bytes(b"being written by another worker right now")
    second = DiskCache(tmp_path, 1_000_000)
    second.scan()
    assert second.total_bytes == first.total_bytes
    assert not leftover.exists() and fresh_tmp.exists()


def test_an_unwritable_directory_is_logged_not_raised(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    disk = DiskCache(blocker, 1_000_000)  # a file where the directory should be
    save_all(disk, [(key(1), entry())])
    assert load(disk, key(1)) is None
    assert "cannot write" in caplog.text


# --- the service with a disk tier ------------------------------------------------------


def test_a_restart_reads_the_disk_instead_of_the_upstream(fake: RunningFake, tmp_path: Path) -> None:
    def service_test(expect: str) -> bytes:
        async def test(svc: AvatarService) -> bytes:
            served = await svc.fetch("user", "10005", 140)
            assert served.cache == expect
            return served.avatar.body
        return run(fake, test, disk=DiskCache(tmp_path, 10_000_000))

    first = service_test("MISS")
    fake.reset()
    assert service_test("HIT") == first  # a new process's memory is empty; the disk is not
    assert fake.stats()["requests"] == 0
    assert first == avatar_bytes("user", "10005", 0, 140)


@pytest.mark.parametrize(("later", "expect"), [(120, "STALE"), (10 * 86400, "MISS")])
def test_an_expired_file_is_a_stale_copy_until_too_old(
        fake: RunningFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        later: int, expect: str) -> None:
    async def fill(svc: AvatarService) -> None:
        await svc.fetch("user", "10006", 40)

    run(fake, fill, ttl=60, disk=DiskCache(tmp_path, 10_000_000))
    fake.reset()
    # The disk keeps wall-clock expiry: restart "later" seconds on.
    monkeypatch.setattr(service_module, "wall_clock", lambda: time.time() + later)

    async def restarted(svc: AvatarService) -> None:
        assert (await svc.fetch("user", "10006", 40)).cache == expect
        await asyncio.sleep(0.2)  # let a background refresh land

    run(fake, restarted, ttl=60, stale_ttl=3600, stale_if_error_ttl=86400,
        disk=DiskCache(tmp_path, 10_000_000))
    assert fake.count("user", "10006", 40) == 1  # the refresh, or the miss


# --- several processes on one directory ------------------------------------------------

_WRITER = """
import asyncio, sys, time
from pathlib import Path
from qqavatar.avatars.disk import DiskCache, DiskEntry
from qqavatar.avatars.model import etag_of

directory, tag, rounds = Path(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])

async def main() -> None:
    disk = DiskCache(directory, 1_000_000_000)
    for n in range(rounds):
        for k in range(4):
            # Lengths differ between the writers and the rounds: a torn file would show.
            body = tag * (5000 + 3000 * ((n + k) % 7))
            disk.save(("user", str(10000 + k), 100, ""), DiskEntry(
                body=body, content_type="image/png", is_default=False, size=100,
                format="png", modified_at=1_600_000_000, expires_wall=time.time() + 600,
                max_age=600, etag=etag_of(body)))
        await disk.flush()

asyncio.run(main())
"""


def test_two_processes_writing_the_same_files_never_show_half_a_file(tmp_path: Path) -> None:
    """Workers and servers on one host share the directory: each write is a rename, so a
    reader sees a whole file from one writer or the other, never a mix or a torn one."""
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), tag, "150"])
               for tag in ("a", "b")]
    reader = DiskCache(tmp_path, 1_000_000_000)
    seen: set[bytes] = set()
    try:
        while any(writer.poll() is None for writer in writers):
            for k in range(4):
                found = reader.read(key(k))
                if found is not None:
                    seen.add(found.body[:1])
                    assert found.body == found.body[:1] * len(found.body)
    finally:
        for writer in writers:
            writer.wait(timeout=60)
    assert [writer.returncode for writer in writers] == [0, 0]
    assert reader.corrupt == 0
    assert seen == {b"a", b"b"}  # both writers were read from
    assert not list(tmp_path.rglob("*.tmp"))  # every temporary file was renamed into place
