"""A stored copy that passes the cheap read-back check (an image's magic bytes, the right
type and bounds: avatars/entrycheck.py) but is garbage after its header, asked for in
another format: the transcode fails on it. A real server and the fake qlogo: the copy is
dropped and the avatar fetched again, never a 500 (planted in the disk tier and in Redis).
"""

from __future__ import annotations

import base64
import io
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from PIL import Image

from qqavatar.avatars.disk import DiskCache, DiskEntry
from qqavatar.avatars.entrycheck import entry_fault
from qqavatar.avatars.model import Key, etag_of
from qqavatar.avatars.redis_tier import encode, tier_key
from qqavatar.fakeqlogo import avatar_bytes
from tests.redis_fixture import RedisProcess
from tests.server_fixture import RunningServer

# A PNG signature and a sound 100x100 IHDR chunk, then noise where the pixels should be.
_HEADER = avatar_bytes("user", "10005", 0, 100)[:33]
GARBAGE = _HEADER + secrets.token_bytes(400)


def garbage_entry() -> DiskEntry:
    entry = DiskEntry(body=GARBAGE, content_type="image/png", is_default=False, size=100,
                      format="png", modified_at=1_600_000_000,
                      expires_wall=time.time() + 3600, max_age=3600, etag=etag_of(GARBAGE))
    assert entry_fault(entry) is None  # it passes the cheap check: only a decode tells
    return entry


def number() -> str:
    return f"{10_000_000 + secrets.randbelow(10**8)}5"  # ends in 5: the fake's PNG avatars


def webp(server: RunningServer, app_key: str, qq: str, output: str) -> Any:
    return server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app_key,
                                          "qq": qq, "size": "100", "format": "webp",
                                          "output": output})


def assert_refetched(server: RunningServer, app_key: str, qq: str, fake_qlogo: Any) -> None:
    """Both modes answer the upstream's avatar as WebP; the upstream asked once."""
    assert_refetched_after(server, app_key, qq, fake_qlogo, before=0)


def assert_refetched_after(server: RunningServer, app_key: str, qq: str, fake_qlogo: Any,
                           before: int) -> None:
    image = webp(server, app_key, qq, "1")
    assert image.status_code == 200, image.text
    assert image.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(image.content)) as img:
        assert (img.format, img.size) == ("WEBP", (100, 100))
    reply = webp(server, app_key, qq, "0")
    assert reply.status_code == 200
    data = reply.json()["data"]
    assert data["err_code"] == 0, data
    assert base64.b64decode(data["img"]) == image.content
    assert fake_qlogo.count("user", qq, 100) == before + 1
    # the original format is the upstream's image now, not the planted copy
    plain = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app_key,
                                           "qq": qq, "size": "100"})
    assert plain.content == avatar_bytes("user", qq, 0, 100)


@pytest.fixture(scope="module")
def disk_server(tmp_path_factory: pytest.TempPathFactory,
                fake_qlogo: Any) -> Iterator[tuple[RunningServer, str]]:
    running = RunningServer(tmp_path_factory.mktemp("garbage"), fake_qlogo.url,
                            {"QQAVATAR_DISK_CACHE_DIR": ""})  # "": the default, data dir
    try:
        app_key = running.create_app("garbage")["app_key"]
        running.wait_for_app(app_key)
        yield running, app_key
    finally:
        running.stop()


async def planted_on_disk(server: RunningServer) -> tuple[str, Key, DiskCache]:
    """A new number whose 100 px copy in the server's disk tier is the garbage entry."""
    qq = number()
    key: Key = ("user", qq, 100, "")
    disk = DiskCache(server.data_dir / "avatars", 10**9)
    disk.save(key, garbage_entry())
    await disk.flush()
    assert disk.read(key) is not None
    return qq, key, disk


@pytest.mark.anyio
async def test_a_garbage_file_in_the_disk_tier_is_fetched_again(
        disk_server: tuple[RunningServer, str], fake_qlogo: Any) -> None:
    server, app_key = disk_server
    qq, key, disk = await planted_on_disk(server)
    assert_refetched(server, app_key, qq, fake_qlogo)
    deadline = time.monotonic() + 5  # the fresh copy replaces the file (in the background)
    while (stored := disk.read(key)) is not None and stored.body == GARBAGE \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored is not None and stored.body == avatar_bytes("user", qq, 0, 100)
    assert "unhandled error" not in server.output()
    assert "its copy does not decode" in server.output()


@pytest.mark.anyio
async def test_when_the_upstream_fails_too_the_answer_is_its_error(
        disk_server: tuple[RunningServer, str], fake_qlogo: Any) -> None:
    server, app_key = disk_server
    qq, key, disk = await planted_on_disk(server)
    fake_qlogo.fault("notimage", numbers=[qq])  # a body that is no image either
    image = webp(server, app_key, qq, "1")
    assert image.status_code == 502, image.text
    data = webp(server, app_key, qq, "0").json()
    assert (data["ret"], data["data"]["err_code"]) == (200, -3), data  # INVALID
    deadline = time.monotonic() + 5  # the garbage file is gone (removed in the background)
    while disk.read(key) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert disk.read(key) is None
    fake_qlogo.fault("none")
    assert_refetched_after(server, app_key, qq, fake_qlogo, before=fake_qlogo.count(
        "user", qq, 100))


def test_a_garbage_entry_in_redis_is_fetched_again(tmp_path: Path, fake_qlogo: Any) -> None:
    (tmp_path / "redis").mkdir()
    redis_server = RedisProcess(tmp_path / "redis")
    try:
        server = RunningServer(tmp_path / "server", fake_qlogo.url,
                               {"QQAVATAR_REDIS_URL": redis_server.url,
                                "QQAVATAR_DISK_CACHE_DIR": "off"})
        try:
            app_key = server.create_app("garbage")["app_key"]
            server.wait_for_app(app_key)
            qq = number()
            key: Key = ("user", qq, 100, "")
            with redis.Redis.from_url(redis_server.url) as client:
                client.set(tier_key(key), encode(garbage_entry()), px=3_600_000)
                assert_refetched(server, app_key, qq, fake_qlogo)
                stored = client.get(tier_key(key))
            assert stored is not None and stored.endswith(avatar_bytes("user", qq, 0, 100))
        finally:
            server.stop()
    finally:
        redis_server.stop()
