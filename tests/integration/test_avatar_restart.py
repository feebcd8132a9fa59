"""The disk tier on its defaults, through real servers: a restart costs no upstream request.

No disk setting at all: the tier is on in `<data dir>/avatars`. Two workers warm a set of
avatars (every size, images and JSON), the server stops and starts again on the same data
dir, and the replay is answered from disk by whichever worker gets each call, while the
fake qlogo counts every request it is sent.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qqavatar.fakeqlogo import RunningFake, avatar_bytes, serve_in_thread
from tests.server_fixture import RunningServer

NUMBERS = [str(5_400_001 + n) for n in range(8)]
SIZES = ("40", "100", "140", "640")
WARM = [(number, size) for number in NUMBERS for size in SIZES]


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningFake]:
    with serve_in_thread() as running:
        yield running


def start(data_dir: Path, upstream: RunningFake) -> RunningServer:
    # "" counts as unset: whatever the environment says, the default directory.
    return RunningServer(data_dir, upstream.url, {"QQAVATAR_DISK_CACHE_DIR": ""},
                         args=("--workers", "2"))


def ask(server: RunningServer, app_key: str, number: str, size: str,
        output: str = "1") -> tuple[int, bytes]:
    reply = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app_key,
                                           "qq": number, "size": size, "output": output})
    if output == "1":
        return reply.status_code, reply.content
    data = reply.json()["data"]
    assert data["err_code"] == 0, data
    return reply.status_code, base64.b64decode(data["img"])


def stored_files(data_dir: Path) -> list[Path]:
    """The files of the warmed set (`wait_for_app` asks for an avatar of its own)."""
    return [path for path in (data_dir / "avatars").rglob("*.avatar")
            if path.name.split("-")[0] in NUMBERS]


def test_a_restart_on_defaults_asks_the_upstream_nothing(tmp_path: Path,
                                                         upstream: RunningFake) -> None:
    server = start(tmp_path, upstream)
    try:
        app_key = server.create_app("restart")["app_key"]
        server.wait_for_app(app_key)
        for number, size in WARM:
            assert ask(server, app_key, number, size) == (
                200, avatar_bytes("user", number, 0, int(size)))
        deadline = time.monotonic() + 10
        while len(stored_files(tmp_path)) < len(WARM) and time.monotonic() < deadline:
            time.sleep(0.05)  # the writes run in the background
    finally:
        server.stop()
    assert len(stored_files(tmp_path)) == len(WARM)
    asked = upstream.stats()["requests"]

    restarted = start(tmp_path, upstream)
    try:
        restarted.wait_for_app(app_key)
        for _ in range(2):  # each worker has its own memory: both read the shared files
            for number, size in WARM:
                expected = avatar_bytes("user", number, 0, int(size))
                assert ask(restarted, app_key, number, size) == (200, expected)
                assert ask(restarted, app_key, number, size, output="0") == (200, expected)
        assert upstream.stats()["requests"] == asked
    finally:
        restarted.stop()
