"""Statistics through a real server: every answered call is counted, by app, service and
ret, with err_code < 0 answers, cache hits, upstream fetches and daily active members;
counts survive a graceful stop exactly and a kill -9 within a second; `qqavatar stats`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from qqavatar.protocol.sign import compute_sign
from tests.server_fixture import RunningServer

SHANGHAI = timezone(timedelta(hours=8))
UNKNOWN_KEY = "F" * 32


def today() -> str:
    return datetime.now(SHANGHAI).date().isoformat()


def first_app_key(server: RunningServer) -> str:
    match = re.search(r"app_key\s+([0-9A-F]{32})", server.output())
    assert match, server.output()
    return match.group(1)


class Traffic:
    """Calls a server and works out, from the answers alone, what its statistics must say.

    Cache hits are what the server says (`X-Cache: HIT`), upstream fetches what the fake qlogo
    counts. Counting rules under test: ret 406 (unknown app) and 404 (unknown service) count under
    no app; 404 under service ""; every other answer under the app the call named. The
    server's start-up probe (one `App.Site.Index` call by the fixture) is counted too.
    """

    def __init__(self, server: RunningServer, fake: Any) -> None:
        self.server = server
        self.fake = fake
        self.rows: dict[tuple[str | None, str], dict[str, Any]] = {}
        self.members: dict[str, set[str]] = {}
        self._row(None, "App.Site.Index")["by_ret"]["200"] += 1  # the start-up probe

    def _row(self, app_key: str | None, service: str) -> dict[str, Any]:
        return self.rows.setdefault((app_key, service), {
            "by_ret": Counter(), "system_errors": 0, "cache_hits": 0, "upstream_fetches": 0})

    def call(self, service: str, params: dict[str, str], app_key: str | None = None,
             *, image: bool = False) -> dict[str, Any]:
        avatar = ("user", params["qq"], int(params.get("size", "100"))) \
            if service == "App.QQ.UserImage" and "qq" in params else None
        fetched_before = self.fake.count(*avatar) if avatar else 0
        reply = self.server.client.get("/", params={"s": service, **params})
        if image:  # image mode: the HTTP status is the ret, the body the picture
            body: dict[str, Any] = {"ret": 200 if reply.status_code in (200, 304) else
                                    reply.status_code, "data": {"err_code": 0}}
        else:
            body = reply.json()
        ret = body["ret"]
        owner = None if ret in (404, 406) else app_key
        row = self._row(owner, "" if ret == 404 else service)
        row["by_ret"][str(ret)] += 1
        if ret != 200:
            return body
        data = body["data"]
        if avatar is not None:  # the truth: did qlogo see a request, did the server say HIT
            fetches = self.fake.count(*avatar) - fetched_before
            assert fetches in (0, 1)
            row["upstream_fetches"] += fetches
            row["cache_hits"] += reply.headers.get("x-cache", "HIT" if not fetches else "") \
                == "HIT"
        if isinstance(data.get("err_code"), int) and data["err_code"] < 0:
            row["system_errors"] += 1
        if "uuid" in params and owner is not None:
            self.members.setdefault(owner, set()).add(params["uuid"].upper())
        return body

    def avatar(self, app_key: str, qq: str, **extra: str) -> dict[str, Any]:
        return self.call("App.QQ.UserImage", {"app_key": app_key, "qq": qq, "output": "0",
                                              **extra}, app_key)

    def wait_for_app(self, app_key: str) -> None:
        """Until the server knows a new app: 406, then anything else. (A call that breaks a
        parameter rule would not do: the rules are checked before the app, so 400 at once.)"""
        deadline = time.monotonic() + 5
        params = {"app_key": app_key, "qq": "10001", "output": "0"}
        while self.call("App.QQ.UserImage", params, app_key)["ret"] == 406:
            assert time.monotonic() < deadline, "the server never learnt the app"
            time.sleep(0.05)

    def expected(self) -> list[dict[str, Any]]:
        rows = []
        for (app_key, service), row in self.rows.items():
            rows.append({
                "day": today(), "app_key": app_key, "service": service,
                "calls": sum(row["by_ret"].values()),
                "by_ret": dict(sorted(row["by_ret"].items())),
                "system_errors": row["system_errors"], "cache_hits": row["cache_hits"],
                "upstream_fetches": row["upstream_fetches"],
                "active_members": len(self.members.get(app_key or "", ())),
            })
        return sorted(rows, key=lambda r: (r["app_key"] or "", r["service"]))


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (granian serves from worker processes)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def kill_9(pid: int) -> None:
    """SIGKILL the server and its workers: frozen first, so none of them can react (by a
    shutdown of its own) to another one's death."""
    tree = process_tree(pid)
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for member in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, sig)


def stats_json(server: RunningServer, *args: str) -> list[dict[str, Any]]:
    done = server.cli("stats", "--json", *args)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def test_every_answer_is_counted_exactly_after_sigterm(tmp_path: Path, fake_qlogo: Any) -> None:
    server = RunningServer(tmp_path / "graceful", fake_qlogo.url)
    try:
        traffic = Traffic(server, fake_qlogo)
        key_a = first_app_key(server)
        app_b = server.create_app("second", sign_required=True)
        key_b = app_b["app_key"]

        for qq in ("10001", "10002", "10001", "10001", "10003", "10002"):  # misses, then hits
            assert traffic.avatar(key_a, qq)["ret"] == 200
        assert traffic.avatar(key_a, "10002", size="40")["ret"] == 200  # another size: a miss
        traffic.call("App.QQ.UserImage", {"app_key": key_a, "qq": "10001"}, key_a, image=True)
        assert traffic.avatar(key_a, "0123")["ret"] == 400                  # bad qq
        assert traffic.call("App.QQ.UserImage", {"app_key": UNKNOWN_KEY, "qq": "10001"},
                            None)["ret"] == 406
        assert traffic.call("App.QQ.Nope", {"app_key": key_a}, key_a)["ret"] == 404
        assert traffic.call("App.Site.Index", {})["ret"] == 200

        # upstream faults: answers with err_code < 0, never cached
        fake_qlogo.fault("error500", numbers=["20001"])
        fake_qlogo.fault("notimage", numbers=["20002"])
        for qq in ("20001", "20002", "20001"):
            assert traffic.avatar(key_a, qq)["data"]["err_code"] < 0
        fake_qlogo.fault("none")

        # a member of app A: register, log in, call with the session
        password = hashlib.md5(b"pa55word").hexdigest()
        traffic.call("App.User.Register", {"app_key": key_a, "username": "alice",
                                           "password": password}, key_a)
        login = traffic.call("App.User.Login", {"app_key": key_a, "username": "alice",
                                                "password": password}, key_a)
        session = {"uuid": login["data"]["uuid"], "token": login["data"]["token"]}
        for qq in ("10001", "10004"):
            assert traffic.avatar(key_a, qq, **session)["ret"] == 200

        # app B requires signing: 400 without a sign, 409 with a wrong one, 200 signed
        traffic.wait_for_app(key_b)
        assert traffic.avatar(key_b, "10001")["ret"] == 400
        assert traffic.avatar(key_b, "10001", sign="0" * 32)["ret"] == 409
        params = {"s": "App.QQ.UserImage", "app_key": key_b, "qq": "10005", "output": "0"}
        signed = {"sign": compute_sign(params, app_b["app_secret"])}
        assert traffic.avatar(key_b, "10005", **signed)["ret"] == 200

        # a call still waiting for qlogo when SIGTERM comes is answered, and counted
        fake_qlogo.fault("none", delay_ms=600, numbers=["10006"])
        slow: dict[str, Any] = {}
        waiting = threading.Thread(target=lambda: slow.update(traffic.avatar(key_a, "10006")))
        waiting.start()
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        waiting.join(timeout=15)
        assert slow["ret"] == 200 and slow["data"]["err_code"] == 0
        assert server.proc.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        server.stop()

    expected = traffic.expected()
    assert stats_json(server) == expected
    by_key = {(row["app_key"], row["service"]): row for row in expected}
    # the figures the issue names, spelled out for the record
    user_image = by_key[(key_a, "App.QQ.UserImage")]
    assert user_image["by_ret"] == {"200": 14, "400": 1}
    assert (user_image["system_errors"], user_image["cache_hits"],
            user_image["upstream_fetches"], user_image["active_members"]) == (3, 5, 9, 1)
    assert by_key[(None, "")]["by_ret"] == {"404": 1}
    assert by_key[(key_b, "App.QQ.UserImage")]["by_ret"]["409"] == 1

    # filters and the readable table
    assert stats_json(server, "--app", key_b.lower()) == [r for r in expected
                                                          if r["app_key"] == key_b]
    assert stats_json(server, "--app", UNKNOWN_KEY) == []
    table = server.cli("stats", "--days", "3")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["day", "app", "service", "calls", "by", "ret", "sys.err",
                                "hits", "fetches", "members"]
    row_a = next(line for line in lines if key_a in line and "App.QQ.UserImage" in line)
    assert row_a.split() == [today(), key_a, "App.QQ.UserImage", "15", "200:14", "400:1",
                             "3", "5", "9", "1"]
    assert any(line.split()[1:3] == ["-", "-"] for line in lines[1:])  # no app, no service
    bad = server.cli("stats", "--days", "0")
    assert bad.returncode == 2 and "--days" in bad.stderr


def test_sigint_on_uvicorn_also_writes_everything(tmp_path: Path, fake_qlogo: Any) -> None:
    server = RunningServer(tmp_path / "sigint", fake_qlogo.url, args=("--server", "uvicorn"))
    key = first_app_key(server)
    for _ in range(25):
        assert server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": key,
                                              "qq": "10001", "output": "0"}).json()["ret"] == 200
    server.client.close()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=15) in (0, -signal.SIGINT)
    server.stop()
    [row] = [r for r in stats_json(server) if r["app_key"] == key]
    assert (row["calls"], row["cache_hits"], row["upstream_fetches"]) == (25, 24, 1)


def test_kill_9_loses_at_most_the_last_second(tmp_path: Path, fake_qlogo: Any) -> None:
    server = RunningServer(tmp_path / "killed", fake_qlogo.url)
    key = first_app_key(server)
    params = {"s": "App.QQ.UserImage", "app_key": key, "qq": "10001", "output": "0"}
    answered: list[float] = []
    interval = 0.02  # a steady ~50 calls per second for 2.5 seconds
    start = time.monotonic()
    while time.monotonic() - start < 2.5:
        assert server.client.get("/", params=params).json()["ret"] == 200
        answered.append(time.monotonic())
        time.sleep(max(0.0, start + len(answered) * interval - time.monotonic()))
    killed_at = time.monotonic()
    kill_9(server.proc.pid)
    server.proc.wait(timeout=10)
    server.stop()
    [row] = [r for r in stats_json(server) if r["app_key"] == key]
    last_second = sum(1 for t in answered if t > killed_at - 1.0)
    assert len(answered) - last_second <= row["calls"] <= len(answered), \
        (len(answered), last_second, row["calls"])


def test_two_workers_add_up_exactly(tmp_path: Path, fake_qlogo: Any) -> None:
    server = RunningServer(tmp_path / "workers", fake_qlogo.url, args=("--workers", "2"))
    key = first_app_key(server)
    made = 0
    for qq in ("60001", "60002", "60003", "60004") * 10:
        with httpx.Client(base_url=server.url) as fresh:  # new connections: both workers serve
            assert fresh.get("/", params={"s": "App.QQ.UserImage", "app_key": key, "qq": qq,
                                          "output": "0"}).json()["ret"] == 200
        made += 1
    assert server.stop() in (0, -signal.SIGTERM)
    [row] = [r for r in stats_json(server) if r["app_key"] == key]
    assert row["calls"] == made == row["cache_hits"] + row["upstream_fetches"]
    assert 4 <= row["upstream_fetches"] <= 8  # each worker has its own memory cache
