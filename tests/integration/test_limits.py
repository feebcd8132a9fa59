"""Per-app limits through real servers: IP allow-list, bound domains, rate limit, quotas.

Limits set with `qqavatar app update` reach a running server within a second.
To know when, without spending quota or rate on it, `apply` binds the domain
`127.0.0.1` along with the limits and probes with another Host and a session
that cannot hold: before the update that is ret 401 (the session guard, which
runs before the quota), after it ret 406 (the domain check, which runs before
the rate limit), or 402 when the update also shuts out our address.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_fixture import RunningServer

P = "客户端非法请求："
IP_FORBIDDEN = P + "当前IP禁止访问"
FOREIGN_DOMAIN = P + "非法app_key，请核对你所在的接口域名"
TOO_FAST = P + "请求过于频繁，请稍后再试"
QUOTA_USED_UP = P + "接口调用次数已用完"
PROBE_HOST = "probe.invalid"


def update(server: RunningServer, app_key: str, *flags: str) -> dict[str, Any]:
    done = server.cli("app", "update", app_key, *flags, "--json")
    assert done.returncode == 0, done.stderr
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def probe(server: RunningServer, app_key: str) -> int:
    reply = server.client.get("/", headers={"Host": PROBE_HOST}, params={
        "s": "App.QQ.UserImage", "app_key": app_key, "qq": "10001", "output": "0",
        "uuid": "0" * 32, "token": "0" * 64})
    ret: int = reply.json()["ret"]
    return ret


def wait_for_probe(server: RunningServer, app_key: str, expected: int,
                   timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (ret := probe(server, app_key)) != expected:
        assert time.monotonic() < deadline, f"probe still answers {ret}, not {expected}"
        time.sleep(0.05)


def apply(server: RunningServer, app_key: str, *flags: str, expect: int = 406) -> dict[str, Any]:
    """Update the app's limits (binding 127.0.0.1) and wait until the server has them."""
    record = update(server, app_key, "--domains", "127.0.0.1", *flags)
    wait_for_probe(server, app_key, expect)
    return record


def new_app(server: RunningServer, name: str) -> str:
    app_key: str = server.create_app(name)["app_key"]
    wait_for_probe(server, app_key, 401)  # known to the server (no call spent)
    return app_key


def call(server: RunningServer, app_key: str, client: httpx.Client | None = None,
         **headers: str) -> dict[str, Any]:
    reply = (client or server.client).get("/", headers=headers, params={
        "s": "App.QQ.UserImage", "app_key": app_key, "qq": "10001", "output": "0"})
    decoded: dict[str, Any] = reply.json()
    return decoded


def burst(server: RunningServer, app_key: str, calls: int) -> tuple[Counter[int], set[str], float]:
    """`calls` concurrent calls: answers by ret, the error messages, seconds taken."""
    with (httpx.Client(base_url=server.url, timeout=30.0,
                       limits=httpx.Limits(max_connections=calls)) as client,
          concurrent.futures.ThreadPoolExecutor(calls) as pool):
        # Connect first, so the calls themselves land close together.
        list(pool.map(lambda _: client.get("/", params={"s": "App.Site.Index"}), range(calls)))
        start = time.monotonic()
        replies = list(pool.map(lambda _: call(server, app_key, client), range(calls)))
        elapsed = time.monotonic() - start
    return Counter(r["ret"] for r in replies), {r["msg"] for r in replies if r["msg"]}, elapsed


# --- IP allow-list ---------------------------------------------------------------------------

def test_ip_allow_list(server: RunningServer) -> None:
    key = new_app(server, "ip allow")
    apply(server, key, "--ip-allow", "10.0.0.0/8", expect=402)
    reply = call(server, key)
    assert (reply["ret"], reply["msg"], reply["data"]) == (402, IP_FORBIDDEN, {})
    image = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": key, "qq": "10001"})
    assert image.status_code == 402 and image.json()["msg"] == IP_FORBIDDEN
    # No trusted proxies are configured: X-Forwarded-For is the caller's word, ignored.
    assert call(server, key, **{"X-Forwarded-For": "10.1.2.3"})["ret"] == 402
    apply(server, key, "--ip-allow", "10.0.0.0/8,127.0.0.0/8")
    assert call(server, key)["ret"] == 200


def test_forwarded_for_is_ignored_from_untrusted_peers_on_uvicorn(
        tmp_path: Path, fake_qlogo: Any) -> None:
    # uvicorn by itself believes X-Forwarded-For from loopback; qqavatar serve turns that off.
    running = RunningServer(tmp_path, fake_qlogo.url, args=("--server", "uvicorn"))
    try:
        key = new_app(running, "uvicorn ip")
        apply(running, key, "--ip-allow", "203.0.113.7", expect=402)
        assert call(running, key, **{"X-Forwarded-For": "203.0.113.7"})["msg"] == IP_FORBIDDEN
    finally:
        running.stop()


@pytest.fixture(scope="module", params=["granian", "uvicorn"])
def behind_proxy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    """A server that trusts loopback as its reverse proxy."""
    running = RunningServer(tmp_path_factory.mktemp("proxied"), fake_qlogo.url,
                            {"QQAVATAR_TRUSTED_PROXIES": "127.0.0.1/32,10.0.0.0/8"},
                            args=("--server", request.param))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def proxied_key(behind_proxy: RunningServer) -> str:
    key = new_app(behind_proxy, "proxied")
    apply(behind_proxy, key, "--ip-allow", "203.0.113.0/24", expect=402)
    return key


@pytest.mark.parametrize(
    ("forwarded_for", "ret"),
    [
        (None, 402),                               # the proxy itself is not allowed
        ("203.0.113.7", 200),
        ("203.0.113.7, 10.0.0.2", 200),            # trusted hops are skipped
        ("198.51.100.1", 402),
        ("203.0.113.7, 198.51.100.1", 402),        # the right-most untrusted hop is the client
        ("198.51.100.1, 203.0.113.7", 200),        # left of it: the client's own claims
    ],
)
def test_forwarded_for_from_trusted_proxies(behind_proxy: RunningServer, proxied_key: str,
                                            forwarded_for: str | None, ret: int) -> None:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    reply = call(behind_proxy, proxied_key, **headers)
    assert reply["ret"] == ret, reply
    if ret == 402:
        assert reply["msg"] == IP_FORBIDDEN


# --- bound domains ---------------------------------------------------------------------------

def test_bound_domains(server: RunningServer) -> None:
    key = new_app(server, "domains")
    record = update(server, key, "--domains", "API.Example.com,avatar.example.org")
    assert record["domains"] == ["api.example.com", "avatar.example.org"]
    wait_for_probe(server, key, 406)
    for host in ("api.example.com", "API.EXAMPLE.COM:8080", "avatar.example.org."):
        assert call(server, key, Host=host)["ret"] == 200, host
    for host in ("example.com", "api.example.com.evil.test", f"127.0.0.1:{server.port}"):
        reply = call(server, key, Host=host)
        assert (reply["ret"], reply["msg"]) == (406, FOREIGN_DOMAIN), host
        assert "_auth" in reply  # the app is known: the answer is still signed


# --- rate limit ------------------------------------------------------------------------------

def test_rate_limit(server: RunningServer) -> None:
    key = new_app(server, "rate")
    apply(server, key, "--rate-limit", "5")
    by_ret, messages, elapsed = burst(server, key, 20)
    assert set(by_ret) == {200, 408}, by_ret
    assert messages == {TOO_FAST}
    if elapsed < 1.0:  # all in one second: exactly the limit got through
        assert by_ret[200] == 5
    else:              # a slow machine: still never more than the limit per second
        assert by_ret[200] <= 5 * (int(elapsed) + 1)
    time.sleep(1.1)    # the window has moved on
    assert call(server, key)["ret"] == 200


# --- quotas ----------------------------------------------------------------------------------

def test_daily_quota_is_exact_under_concurrent_calls(server: RunningServer) -> None:
    key = new_app(server, "daily")
    apply(server, key, "--daily-quota", "30")
    by_ret, messages, _ = burst(server, key, 50)
    assert by_ret == Counter({200: 30, 413: 20})
    assert messages == {QUOTA_USED_UP}
    # Clearing the quota lets calls through again (the probe host is now bound: 401).
    update(server, key, "--daily-quota", "0", "--domains", f"127.0.0.1,{PROBE_HOST}")
    wait_for_probe(server, key, 401)
    assert call(server, key)["ret"] == 200


def test_monthly_quota_counts_only_admitted_calls(server: RunningServer) -> None:
    key = new_app(server, "monthly")
    apply(server, key, "--monthly-quota", "3")
    refused = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": key,
                                             "qq": "10001", "uuid": "0" * 32, "token": "0" * 64})
    assert refused.json()["ret"] == 401  # refused before the quota: not counted
    assert [call(server, key)["ret"] for _ in range(4)] == [200, 200, 200, 413]
    assert call(server, key)["msg"] == QUOTA_USED_UP
    # Raising the quota admits more calls this month.
    update(server, key, "--monthly-quota", "4", "--domains", f"127.0.0.1,{PROBE_HOST}")
    wait_for_probe(server, key, 401)
    assert [call(server, key)["ret"] for _ in range(2)] == [200, 413]


def test_quota_survives_a_restart(tmp_path: Path, fake_qlogo: Any) -> None:
    running = RunningServer(tmp_path, fake_qlogo.url)
    try:
        key = new_app(running, "restart")
        apply(running, key, "--daily-quota", "5")
        assert [call(running, key)["ret"] for _ in range(3)] == [200, 200, 200]
    finally:
        assert running.stop() == 0  # a graceful stop stores the last counts
    rows = running.query("SELECT period, calls FROM quota_usage WHERE app_key = :key", key=key)
    assert sorted(calls for _, calls in rows) == [3, 3]            # today and this month
    assert {period[0] for period, _ in rows} == {"D", "M"}
    running = RunningServer(tmp_path, fake_qlogo.url)
    try:  # the app is loaded before the server listens: no wait, no probe
        assert [call(running, key)["ret"] for _ in range(3)] == [200, 200, 413]
    finally:
        running.stop()


# --- private links ---------------------------------------------------------------------------

def test_link_views_skip_the_ip_and_domain_checks_not_the_quota(server: RunningServer) -> None:
    # A viewer presents no app_key, so what guards the key does not apply to views.
    key = new_app(server, "linked")
    made = server.client.get("/api/App/QQ/UserImageLink", params={"app_key": key, "qq": "10001"})
    link = made.json()["data"]["url"]  # the app's first counted call
    apply(server, key, "--ip-allow", "10.0.0.0/8", "--daily-quota", "2", expect=402)
    assert call(server, key)["msg"] == IP_FORBIDDEN  # not counted
    assert httpx.get(link, headers={"Host": "elsewhere.example"}).status_code == 200
    refused = httpx.get(link)
    assert refused.status_code == 413 and refused.json()["msg"] == QUOTA_USED_UP


# --- the CLI ---------------------------------------------------------------------------------

def test_limit_flags_round_trip(server: RunningServer) -> None:
    key = server.create_app("cli limits")["app_key"]
    record = update(server, key, "--daily-quota", "1000", "--monthly-quota", "20000",
                    "--rate-limit", "50", "--ip-allow", "10.1.2.3/8, 192.0.2.1",
                    "--domains", "Api.Example.com", "--sign-required")
    expected = {"daily_quota": 1000, "monthly_quota": 20000, "rate_limit": 50,
                "ip_allow": ["10.0.0.0/8", "192.0.2.1/32"], "domains": ["api.example.com"],
                "sign_required": True}
    assert {name: record[name] for name in expected} == expected
    shown = json.loads(server.cli("app", "show", key, "--json").stdout)
    assert {name: shown[name] for name in expected} == expected
    text = server.cli("app", "show", key).stdout
    for line in ("daily_quota    1000", "rate_limit     50/s", "ip_allow       10.0.0.0/8, "
                 "192.0.2.1/32", "domains        api.example.com"):
        assert line in text
    # 0 and none clear; untouched limits stay.
    cleared = update(server, key, "--daily-quota", "0", "--rate-limit", "none",
                     "--ip-allow", "none", "--no-sign-required")
    assert (cleared["daily_quota"], cleared["rate_limit"], cleared["ip_allow"],
            cleared["sign_required"]) == (None, None, [], False)
    assert (cleared["monthly_quota"], cleared["domains"]) == (20000, ["api.example.com"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--daily-quota", "-1"), "Invalid value for '--daily-quota'"),
        (("--monthly-quota", "lots"), "is not a whole number (or 0 / none to clear)"),
        (("--rate-limit", "100001"), "rate limit must be between 1 and 100000"),
        (("--ip-allow", "10.0.0.0/8,nope"), "not an IP address or CIDR network: 'nope'"),
        (("--domains", "example.com:8080"), "a domain is a host name without scheme, port"),
    ],
)
def test_bad_limit_flags(server: RunningServer, flags: tuple[str, ...], message: str) -> None:
    # Refused before the database is opened (the store then refuses them too, see
    # tests/unit/test_store_members_limits.py), so any key will do.
    done = server.cli("app", "update", "0" * 32, *flags)
    assert done.returncode == 2
    assert message in done.stderr.replace("\n", " ").replace("  ", " ")
