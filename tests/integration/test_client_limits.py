"""One client cannot deny an app to everyone (issue 15, finding 2; docs/security.md).

Two client addresses: loopback sources 127.0.0.2 and 127.0.0.3, and two addresses behind a
trusted proxy (X-Forwarded-For from 127.0.0.1). A flood from one of them is refused once
over its own budget; the other, and the app's owner, are still answered.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest

from tests.integration.test_limits import apply, new_app
from tests.server_fixture import RunningServer

TOO_FAST = "客户端非法请求：请求过于频繁，请稍后再试"
TOO_MANY_LOGINS = "客户端非法请求：登录失败次数过多，请稍后再试"
BUDGETS = {"QQAVATAR_CLIENT_VIEW_RATE": "3", "QQAVATAR_CLIENT_MEMBER_RATE": "3",
           "QQAVATAR_CLIENT_FAILED_LOGINS": "2", "QQAVATAR_TRUSTED_PROXIES": "127.0.0.1/32"}


@pytest.fixture(scope="module")
def logins(tmp_path_factory: pytest.TempPathFactory,
           fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    """Only the failed-login throttle on (0 turns the other budgets off)."""
    running = RunningServer(tmp_path_factory.mktemp("logins"), fake_qlogo.url, {
        "QQAVATAR_CLIENT_VIEW_RATE": "0", "QQAVATAR_CLIENT_MEMBER_RATE": "0",
        "QQAVATAR_CLIENT_FAILED_LOGINS": "2"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    running = RunningServer(tmp_path_factory.mktemp("client-limits"), fake_qlogo.url, BUDGETS)
    yield running
    running.stop()


def client_from(server: RunningServer, source: str, connections: int = 100) -> httpx.Client:
    """A client whose connections leave from `source` (a loopback address)."""
    return httpx.Client(base_url=server.url, timeout=30.0, transport=httpx.HTTPTransport(
        local_address=source, limits=httpx.Limits(max_connections=connections)))


def flood(get: Callable[[], httpx.Response], calls: int = 20) -> list[httpx.Response]:
    with concurrent.futures.ThreadPoolExecutor(calls) as pool:
        return list(pool.map(lambda _: get(), range(calls)))


def link_path(server: RunningServer, app_key: str, qq: str = "376741929") -> str:
    reply = server.client.get("/api/App/QQ/UserImageLink",
                              params={"app_key": app_key, "qq": qq}).json()
    assert reply["ret"] == 200, reply
    url: str = reply["data"]["url"]
    return url.removeprefix(server.url)


def api_call(client: httpx.Client, app_key: str) -> dict[str, Any]:
    reply: dict[str, Any] = client.get("/", params={
        "s": "App.QQ.UserImage", "app_key": app_key, "qq": "10001", "output": "0"}).json()
    return reply


def test_link_views_flood_from_one_address(limited: RunningServer) -> None:
    """The review's case: an app with rate limit 3; one address floods its link. Only that
    address is refused; the owner's API calls and another viewer are answered."""
    key = new_app(limited, "views")
    apply(limited, key, "--rate-limit", "3")
    path = link_path(limited, key)
    with client_from(limited, "127.0.0.2") as flooder, \
            client_from(limited, "127.0.0.3") as viewer:
        statuses = Counter(r.status_code for r in flood(lambda: flooder.get(path)))
        assert statuses[408] > 0 and statuses[200] <= 6, statuses
        assert viewer.get(path).status_code == 200
        assert api_call(limited.client, key)["ret"] == 200  # the owner's own call


def test_views_behind_a_trusted_proxy(limited: RunningServer) -> None:
    key = new_app(limited, "proxied views")
    path = link_path(limited, key, "10002")

    def view(address: str) -> httpx.Response:
        return limited.client.get(path, headers={"X-Forwarded-For": address})

    statuses = Counter(r.status_code for r in flood(lambda: view("203.0.113.5")))
    assert statuses[408] > 0, statuses  # over the per-client budget of 3 views a second
    assert view("203.0.113.6").status_code == 200
    # An address the client wrote left of the proxy's own hop proves nothing.
    assert view("198.51.100.1, 203.0.113.5").status_code in (200, 408)


def test_a_miss_flood_waits_behind_itself(limited: RunningServer, fake_qlogo: Any) -> None:
    """160 different uncached avatars at once from one address, qlogo taking 0.4 s each
    (16 fetch at a time: 4 s of work, past the 2 s a miss may take). Another address's miss,
    sent while the flood waits, gets the next place, not the place after the flood."""
    key = new_app(limited, "misses")
    fake_qlogo.fault("slow", delay_ms=400)

    def miss(client: httpx.Client, number: int) -> httpx.Response:
        return client.get("/", params={"s": "App.QQ.UserImage", "app_key": key,
                                       "qq": str(number)})

    with client_from(limited, "127.0.0.2", 200) as flooder, \
            client_from(limited, "127.0.0.3") as other, \
            concurrent.futures.ThreadPoolExecutor(160) as pool:
        flood = [pool.submit(miss, flooder, 2_000_000 + index) for index in range(160)]
        while sum(future.done() for future in flood) < 16:  # the flood fills the places …
            time.sleep(0.05)
        answer = miss(other, 3_000_001)                      # … and queues behind them
        statuses = Counter(future.result().status_code for future in flood)
    assert answer.status_code == 200, (answer.status_code, answer.text[:200])
    assert answer.headers["content-type"].startswith("image/")
    assert statuses[504] > 0, statuses  # the flood's own tail waited too long


def member_call(client: httpx.Client, app_key: str, service: str, username: str,
                password: str) -> dict[str, Any]:
    reply: dict[str, Any] = client.post("/", data={
        "s": service, "app_key": app_key, "username": username,
        "password": hashlib.md5(password.encode()).hexdigest()}).json()
    return reply


def test_member_calls_flood_from_one_address(limited: RunningServer) -> None:
    key = new_app(limited, "members")
    with client_from(limited, "127.0.0.2") as flooder, \
            client_from(limited, "127.0.0.3") as other:
        replies = flood(lambda: flooder.post("/", data={
            "s": "App.User.Register", "app_key": key, "username": secrets.token_hex(6),
            "password": "0" * 32}))
        rets = Counter(r.json()["ret"] for r in replies)
        assert rets[408] > 0, rets
        assert {r.json()["msg"] for r in replies if r.json()["ret"] == 408} == {TOO_FAST}
        registered = member_call(other, key, "App.User.Register", "carol", "pw")
        assert (registered["ret"], registered["data"]["err_code"]) == (200, 0), registered


def test_failed_logins_are_throttled_per_address_and_per_name(logins: RunningServer) -> None:
    key = new_app(logins, "logins")
    with client_from(logins, "127.0.0.2") as guesser, \
            client_from(logins, "127.0.0.3") as owner:
        for name in ("alice", "bob"):
            assert member_call(owner, key, "App.User.Register", name, "right")["data"][
                "err_code"] == 0
        for _ in range(2):  # the budget: 2 failures a minute per name
            wrong = member_call(guesser, key, "App.User.Login", "alice", "guess")
            assert (wrong["ret"], wrong["data"]["err_code"]) == (200, 1)
        # alice's name is now throttled, from any address, even with the right password …
        for client in (guesser, owner):
            refused = member_call(client, key, "App.User.Login", "alice", "right")
            assert (refused["ret"], refused["msg"]) == (408, TOO_MANY_LOGINS)
        # … bob's is not.
        assert member_call(owner, key, "App.User.Login", "bob", "right")["data"]["err_code"] == 0
        # Per address: 3x the per-name budget, spread over names that do not exist.
        for attempt in range(4):
            member_call(guesser, key, "App.User.Login", f"nobody{attempt}", "guess")
        refused = member_call(guesser, key, "App.User.Login", "bob", "right")
        assert (refused["ret"], refused["msg"]) == (408, TOO_MANY_LOGINS)
        assert member_call(owner, key, "App.User.Login", "bob", "right")["data"]["err_code"] == 0


def test_budgets_off(logins: RunningServer) -> None:
    """0 turns a budget off: the same flood is answered in full."""
    key = new_app(logins, "no budget")
    path = link_path(logins, key)
    statuses = Counter(r.status_code for r in flood(lambda: logins.client.get(path)))
    assert statuses == Counter({200: 20}), statuses
