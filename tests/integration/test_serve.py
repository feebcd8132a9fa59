"""`qqavatar serve` itself: first start on an empty data dir, settings that change answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.server_fixture import RunningServer


def test_first_start_creates_database_and_app(tmp_path: Path, fake_qlogo: Any) -> None:
    data_dir = tmp_path / "fresh"
    server = RunningServer(data_dir, fake_qlogo.url)
    try:
        output = server.output()
        assert f"serving on {server.url}/" in output
        key = re.search(r"app_key\s+([0-9A-F]{32})", output)
        assert key, output
        # Its output here is a file, as under systemd or in a container: no secret in it,
        # but where to find it.
        assert f"app_secret (not printed to a log: qqavatar app show {key.group(1)})" in output
        shown = json.loads(server.cli("app", "show", key.group(1), "--json").stdout)
        assert re.fullmatch(r"[A-Za-z0-9]{64}", shown["app_secret"])
        assert shown["app_secret"] not in output
        if not server.env.get("QQAVATAR_DATABASE_URL", "").startswith("postgresql"):
            assert (data_dir / "qqavatar.db").exists()  # the default: SQLite in the data dir
        reply = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": key.group(1),
                                               "qq": "10001", "output": "0"}).json()
        assert reply["ret"] == 200
        listed = json.loads(server.cli("app", "list", "--json").stdout)
        assert [record["app_key"] for record in listed] == [key.group(1)]
    finally:
        # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15
        assert server.stop() in (0, -15)
        assert "Finished server process" in server.output()
    # a second start keeps the same first app and creates no other
    again = RunningServer(data_dir, fake_qlogo.url)
    try:
        assert key.group(1) in again.output()
        assert "created the first app" not in again.output()
        assert len(json.loads(again.cli("app", "list", "--json").stdout)) == 1
    finally:
        again.stop()


def test_mirror_http_status(tmp_path: Path, fake_qlogo: Any) -> None:
    server = RunningServer(tmp_path / "mirror", fake_qlogo.url, {"QQAVATAR_HTTP_STATUS": "mirror"})
    try:
        app = server.create_app("mirror")
        server.wait_for_app(app["app_key"])
        bad = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                             "qq": "1", "output": "0"})
        assert (bad.status_code, bad.json()["ret"]) == (400, 400)
        unknown = server.client.get("/?s=App.X.Y")
        assert unknown.status_code == 404
        good = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                              "qq": "10001", "output": "0"})
        assert good.status_code == 200
    finally:
        server.stop()


def test_upstream_max_bytes(tmp_path: Path, fake_qlogo: Any) -> None:
    server = RunningServer(tmp_path / "small", fake_qlogo.url, {"QQAVATAR_UPSTREAM_MAX_BYTES": "200"})
    try:
        app = server.create_app("small")
        server.wait_for_app(app["app_key"])
        reply = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                               "qq": "10001", "size": "640", "output": "0"}).json()
        assert reply["data"]["err_code"] == -4
    finally:
        server.stop()
