"""PostgreSQL goes away under a running server (a TCP relay cut in front of the real one):
avatars of known apps keep being served, calls that need the database answer ret 500 with
a clear message, nothing crashes, and everything works and is counted again once the
database is back, without a restart."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from qqavatar.limits.quota import periods_at
from qqavatar.protocol.errors import database_unavailable
from tests.integration.test_admin import csrf_of
from tests.postgres_fixture import as_env, fresh_database, stored_calls, stored_quota_usage
from tests.server_fixture import RunningServer
from tests.tcp_relay import TcpRelay

UNAVAILABLE = database_unavailable().msg
ADMIN_TOKEN = "faults-" + secrets.token_hex(16)  # 32+ characters: the dashboard's minimum


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Calls:
    """Calls to one server for one app, counted per (service, ret) as they are answered."""

    def __init__(self, server: RunningServer, app_key: str) -> None:
        self.server = server
        self.app_key = app_key
        self.made: Counter[tuple[str, int]] = Counter()

    def __call__(self, service: str, **params: str) -> dict[str, Any]:
        reply: dict[str, Any] = self.server.client.post(
            "/", params={"s": service}, data={"app_key": self.app_key, **params}).json()
        self.made[(service, reply["ret"])] += 1
        return reply

    def group_image(self) -> dict[str, Any]:
        return self("App.QQ.GroupImage", group=f"{secrets.randbelow(10**8) + 10**8}",
                    output="0")

    def stored(self, database: URL) -> Counter[tuple[str, int]]:
        # (App.QQ.UserImage is left out: wait_for_app's calls count there too)
        return Counter({key: calls for key, calls in stored_calls(database, self.app_key).items()
                        if key[0] != "App.QQ.UserImage"})


def wait_for(condition: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.mark.postgres
def test_a_database_outage_fails_only_what_needs_the_database(tmp_path: Path,
                                                            fake_qlogo: Any) -> None:
    with fresh_database() as database:
        relay = TcpRelay(database.host or "127.0.0.1", database.port or 5432)
        through = database.set(host="127.0.0.1", port=relay.port)
        server = RunningServer(tmp_path, fake_qlogo.url,
                               {"QQAVATAR_DATABASE_URL": as_env(through),
                                "QQAVATAR_ADMIN_TOKEN": ADMIN_TOKEN})
        admin = httpx.Client(base_url=server.url, timeout=10)
        try:
            assert admin.post("/admin/login", data={"token": ADMIN_TOKEN}).status_code == 303
            csrf = csrf_of(admin.get("/admin").text)
            app_key = server.create_app("faults")["app_key"]
            server.wait_for_app(app_key)
            calls = Calls(server, app_key)
            name, password = "member_" + secrets.token_hex(4), md5("pa55word")
            assert calls("App.User.Register", username=name, password=password)["ret"] == 200
            assert calls("App.User.Login", username=name, password=password)["ret"] == 200
            assert calls.group_image()["ret"] == 200

            relay.cut()
            # Avatars of an app the server knows: served as ever.
            for _ in range(5):
                assert calls.group_image()["ret"] == 200
            # What needs the database: ret 500 and a clear message, at once.
            started = time.monotonic()
            for reply in (
                calls("App.User.Login", username=name, password=password),
                calls("App.User.Register", username="member_" + secrets.token_hex(4),
                      password=password),
                calls("App.User.Check", uuid=secrets.token_hex(16), token=secrets.token_hex(32)),
                # a session the server has not seen cannot be checked: not the caller's fault
                calls("App.QQ.GroupImage", group="123456", output="0",
                      uuid=secrets.token_hex(16), token=secrets.token_hex(32)),
            ):
                assert (reply["ret"], reply["msg"], reply["data"]) == (500, UNAVAILABLE, {})
            assert time.monotonic() - started < 5
            # The dashboard: a write, a page and the JSON API say so too (503, not a bare 500).
            for answer in (admin.post("/admin/apps", data={"name": "x", "csrf": csrf}),
                           admin.get("/admin"),
                           admin.get("/admin/api/apps",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})):
                assert answer.status_code == 503 and "database unavailable" in answer.text
            assert server.client.get("/healthz").status_code == 200
            assert server.proc.poll() is None

            relay.restore()  # no restart: the next call reconnects
            assert wait_for(lambda: calls("App.User.Login", username=name,
                                          password=password)["ret"] == 200, timeout=10)
            assert calls.group_image()["ret"] == 200
            assert admin.post("/admin/apps", data={"name": "after", "csrf": csrf}
                              ).status_code == 303
            # The calls made during the outage were kept and are stored now.
            assert wait_for(lambda: calls.stored(database) == +calls.made, timeout=10), (
                calls.stored(database), calls.made)
            assert calls.made[("App.User.Login", 500)] == 1
            # So were the quota's: every call that reached its handler (App.User.* ones that
            # then found no database included; the unknown session stopped before).
            stored = stored_calls(database, app_key)
            reached = sum(count for (service, ret), count in stored.items()
                          if ret == 200 or (ret == 500 and service.startswith("App.User.")))
            day, _ = periods_at(time.time())
            assert wait_for(lambda: stored_quota_usage(database).get((app_key, day)) == reached,
                            timeout=10), (stored_quota_usage(database), reached)
        finally:
            admin.close()
            server.stop()
            relay.close()
        # An outage is expected, not a bug: the paths that answer calls log no traceback.
        # (The app and link registries' background refreshes are other modules' business.)
        records = [json.loads(line) for line in server.output().splitlines()
                   if line.startswith("{")]
        assert any("database unavailable" in record["message"] for record in records)
        assert not [record for record in records if "exc" in record and record["logger"]
                    .startswith(("qqavatar.gateway", "qqavatar.members", "qqavatar.limits",
                                 "qqavatar.stats", "qqavatar.web"))]
