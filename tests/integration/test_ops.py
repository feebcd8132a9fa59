"""Operating a real server: /healthz, /readyz, /metrics, request ids and logs.

One server (one worker, access log on, logs to a file, hence JSON) serves most tests; its
Redis sits behind a TCP relay the tests cut to see readiness degrade (not fail). Several
workers and a PostgreSQL outage get servers of their own.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from qqavatar.protocol.sign import compute_sign
from tests.postgres_fixture import as_env, fresh_database
from tests.server_fixture import RunningServer
from tests.tcp_relay import TcpRelay

REDIS = ("127.0.0.1", 6379)
GENERATED_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]+")


def reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return False
    return True


class Scrape:
    """One `/metrics` answer; `scrape(name, **labels)` is a sample's value (0 if absent)."""

    def __init__(self, client: httpx.Client) -> None:
        reply = client.get("/metrics")
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain")
        self.values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(reply.text):
            for sample in family.samples:
                self.values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)


def user_image(client: httpx.Client, app_key: str, qq: str, **extra: str) -> httpx.Response:
    params = {"s": "App.QQ.UserImage", "app_key": app_key, "qq": qq, "output": "0", **extra}
    return client.get("/", params=params)


def log_records(server: RunningServer) -> list[dict[str, Any]]:
    """The server's JSON log lines (stdout's banner lines are not JSON and are skipped)."""
    records = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def wait_for(condition: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# --- one worker --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_relay() -> Generator[TcpRelay | None, None, None]:
    if not reachable(REDIS):
        yield None
        return
    relay = TcpRelay(*REDIS)
    yield relay
    relay.close()


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory, fake_qlogo: Any,
        redis_relay: TcpRelay | None) -> Generator[RunningServer, None, None]:
    env = {"QQAVATAR_READY_TIMEOUT": "1"}
    if redis_relay is not None:
        env["QQAVATAR_REDIS_URL"] = f"redis://127.0.0.1:{redis_relay.port}/0"
    server = RunningServer(tmp_path_factory.mktemp("ops"), fake_qlogo.url, env,
                           args=("--access-log",))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ops_app(ops: RunningServer) -> dict[str, Any]:
    record = ops.create_app("ops", sign_required=True)
    ops.wait_for_app(record["app_key"])
    return record


def signed(app: dict[str, Any], params: dict[str, str]) -> dict[str, str]:
    params = {"app_key": app["app_key"], **params}
    return {**params, "sign": compute_sign(params, app["app_secret"])}


def test_healthz(ops: RunningServer) -> None:
    reply = ops.client.get("/healthz")
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})
    assert reply.headers["cache-control"] == "no-store"


def test_readyz_names_every_check(ops: RunningServer, redis_relay: TcpRelay | None) -> None:
    if redis_relay is None:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    reply = ops.client.get("/readyz")
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"status": "ok", "degraded": False,
                            "checks": {"database": "ok", "redis": "ok", "upstream": "closed"}}


def test_readyz_stays_ready_but_degraded_while_redis_is_unreachable(
        ops: RunningServer, ops_app: dict[str, Any], redis_relay: TcpRelay | None) -> None:
    if redis_relay is None:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    redis_relay.cut()
    try:
        reply = ops.client.get("/readyz")
        # Deliberately 200, no longer 503 (issue 6): every replica shares the one Redis,
        # and without it requests still answer from memory and upstream, so a load
        # balancer must not pull every host because Redis blinked. It is reported instead.
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"status": "ok", "degraded": True,
                                "checks": {"database": "ok", "redis": "down",
                                           "upstream": "closed"}}
        number = f"{10_000_000 + secrets.randbelow(10**7)}4"  # a miss: memory, then upstream
        assert ops.client.get("/", params=signed(ops_app, {
            "s": "App.QQ.UserImage", "qq": number, "output": "0"})).json()["ret"] == 200
    finally:
        redis_relay.restore()
    # the link retries after 1 s; a probe is what brings it back
    assert wait_for(lambda: ops.client.get("/readyz").json()["checks"]["redis"] == "ok")
    assert ops.client.get("/readyz").json()["degraded"] is False


def test_metrics_count_calls_cache_and_latency(ops: RunningServer, ops_app: dict[str, Any],
                                               fake_qlogo: Any) -> None:
    numbers = [f"{10_000_000 + secrets.randbelow(10**7)}1" for _ in range(3)]
    before = Scrape(ops.client)
    for number in numbers:  # three misses, then two hits
        assert ops.client.get("/", params=signed(ops_app, {
            "s": "App.QQ.UserImage", "qq": number, "output": "0"})).json()["ret"] == 200
    for number in numbers[:2]:
        assert ops.client.get("/", params=signed(ops_app, {
            "s": "App.QQ.UserImage", "qq": number, "output": "0"})).json()["ret"] == 200
    assert ops.client.get("/", params=signed(ops_app, {
        "s": "App.QQ.UserImage", "qq": "1", "output": "0"})).json()["ret"] == 400
    assert ops.client.get("/?s=App.No.Such" + secrets.token_hex(4)).json()["ret"] == 404
    after = Scrape(ops.client)

    def delta(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    image = "App.QQ.UserImage"
    assert delta("qqavatar_requests_total", service=image, ret="200") == 5
    assert delta("qqavatar_requests_total", service=image, ret="400") == 1
    # a service name a client made up is counted, but not as a label of its own
    assert delta("qqavatar_requests_total", service="unknown", ret="404") == 1
    assert not any(name == "qqavatar_requests_total" and ("service", "App.No.Such") in labels
                   for name, labels in after.values)
    assert delta("qqavatar_request_duration_seconds_count", service=image) == 6
    assert delta("qqavatar_request_duration_seconds_sum", service=image) > 0
    assert delta("qqavatar_cache_lookups_total", result="miss") == 3
    assert delta("qqavatar_cache_lookups_total", result="hit") == 2
    assert delta("qqavatar_upstream_duration_seconds_count") == 3
    assert delta("qqavatar_cache_entries") == 3
    assert delta("qqavatar_cache_bytes") > 3 * 100  # three JPEGs
    assert after("qqavatar_cache_max_bytes") == 256 * 1024**2
    assert after("qqavatar_build_info", version=__import__("qqavatar").__version__) == 1
    # the statistics flusher writes every 0.5 s: the lag stays small while it works
    assert 0 <= after("qqavatar_counter_flush_lag_seconds") < 5


def test_metrics_count_upstream_errors(ops: RunningServer, ops_app: dict[str, Any],
                                       fake_qlogo: Any) -> None:
    number = f"{10_000_000 + secrets.randbelow(10**7)}2"
    fake_qlogo.fault("error500", numbers=[number])
    before = Scrape(ops.client)
    reply = ops.client.get("/", params=signed(ops_app, {
        "s": "App.QQ.UserImage", "qq": number, "output": "0"})).json()
    assert reply["data"]["err_code"] == -3
    after = Scrape(ops.client)
    assert after("qqavatar_upstream_errors_total", err_code="-3") \
        - before("qqavatar_upstream_errors_total", err_code="-3") == 1
    assert after("qqavatar_upstream_duration_seconds_count") \
        - before("qqavatar_upstream_duration_seconds_count") == 1


def test_metrics_count_single_flight_waits(ops: RunningServer, ops_app: dict[str, Any],
                                           fake_qlogo: Any) -> None:
    number = f"{10_000_000 + secrets.randbelow(10**7)}3"
    fake_qlogo.fault("slow", delay_ms=600, numbers=[number])
    params = signed(ops_app, {"s": "App.QQ.UserImage", "qq": number, "output": "0"})
    before = Scrape(ops.client)

    async def five_at_once() -> list[int]:
        async with httpx.AsyncClient(base_url=ops.url, timeout=10) as client:
            replies = await asyncio.gather(*(client.get("/", params=params) for _ in range(5)))
        return [reply.json()["ret"] for reply in replies]

    assert asyncio.run(five_at_once()) == [200] * 5
    after = Scrape(ops.client)

    def delta(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    assert delta("qqavatar_upstream_duration_seconds_count") == 1  # one fetch for all five
    # the others waited for it; one that arrived after it ended was a plain hit
    assert delta("qqavatar_single_flight_waits_total") >= 1
    assert delta("qqavatar_single_flight_waits_total") \
        + delta("qqavatar_cache_lookups_total", result="hit") == 4


def test_request_id_comes_back_and_is_logged(ops: RunningServer,
                                             ops_app: dict[str, Any]) -> None:
    mine = "ops-" + secrets.token_hex(6)
    params = signed(ops_app, {"s": "App.QQ.UserImage", "qq": "10001", "output": "0"})
    reply = ops.client.get("/", params=params, headers={"X-Request-Id": mine})
    assert reply.headers["x-request-id"] == mine
    # an id that is not plain and short is replaced, not echoed
    for bad in ("two words", "x" * 129, "a\"b"):
        echoed = ops.client.get("/healthz", headers={"X-Request-Id": bad}).headers["x-request-id"]
        assert GENERATED_ID.fullmatch(echoed), echoed
    generated = ops.client.get("/", params=params).headers["x-request-id"]
    assert GENERATED_ID.fullmatch(generated)
    assert ops.client.get("/api/App/QQ/UserImage", params={"qq": "1"}).headers["x-request-id"]

    def access(request_id: str) -> dict[str, Any] | None:
        return next((r for r in log_records(ops)
                     if r.get("request_id") == request_id and r["logger"] == "qqavatar.access"),
                    None)

    line = wait_for(lambda: access(mine))
    assert line is not None, ops.output()[-3000:]
    assert (line["method"], line["status"], line["level"]) == ("GET", 200, "info")
    assert line["path"].startswith("/?") and f"app_key={ops_app['app_key'][:6]}…" in line["path"]
    assert "sign=****" in line["path"]
    assert line["duration_ms"] > 0
    assert wait_for(lambda: access(generated)) is not None


def test_logs_hold_no_secrets_or_full_app_keys(ops: RunningServer,
                                               ops_app: dict[str, Any]) -> None:
    key, secret = ops_app["app_key"], ops_app["app_secret"]
    params = signed(ops_app, {"s": "App.QQ.UserImage", "qq": "10001", "output": "0",
                              "uuid": "A" * 32, "token": "T0KEN" * 8})
    ops.client.get("/", params=params)
    ops.client.post("/?s=App.QQ.UserImage", data={**params, "app_secret": secret})
    wrong = {**params, "sign": "0" * 32}
    assert ops.client.get("/", params=wrong).json()["ret"] in (400, 409)
    assert wait_for(lambda: sum(r["logger"] == "qqavatar.access" for r in log_records(ops)) >= 3)
    output = ops.output()
    for value in (key, secret, params["sign"], params["token"]):
        assert value not in output
    assert f"{key[:6]}…" in output


# --- several workers, configured by a file --------------------------------------------------


def test_workers_add_up_and_read_the_config_file(tmp_path: Path, fake_qlogo: Any) -> None:
    config = tmp_path / "qqavatar.toml"
    metrics_dir = tmp_path / "metrics"
    config.write_text(f'http_status = "mirror"\naccess_log = true\nmetrics_dir = "{metrics_dir}"\n')
    # left over from an earlier run: must be cleared, not added to this run's counts
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")
    server = RunningServer(tmp_path / "data", fake_qlogo.url, global_args=("--config", str(config)),
                           args=("--workers", "2", "--log-format", "text"))
    try:
        app = server.create_app("workers")
        server.wait_for_app(app["app_key"])
        before = Scrape(server.client)
        ids = set()
        for _ in range(20):  # a new connection each time: the workers share them out
            reply = httpx.get(server.url + "/", params={
                "s": "App.QQ.UserImage", "app_key": app["app_key"], "qq": "10001", "output": "0"})
            assert reply.json()["ret"] == 200
            ids.add(reply.headers["x-request-id"].split("-")[0])
        assert len(ids) == 2, "both workers answered (each has its own id prefix)"
        # the file's http_status reached both workers
        statuses = {httpx.get(server.url + "/", params={"s": "App.QQ.UserImage",
                                                        "app_key": app["app_key"],
                                                        "qq": "1"}).status_code
                    for _ in range(6)}
        assert statuses == {400}
        for _ in range(4):  # whichever worker answers the scrape, it sees both
            scrape = Scrape(httpx.Client(base_url=server.url))
            assert scrape("qqavatar_requests_total", service="App.QQ.UserImage", ret="200") \
                - before("qqavatar_requests_total", service="App.QQ.UserImage", ret="200") == 20
        # the cache gauge is the sum of both workers' caches, refreshed every second
        assert wait_for(lambda: Scrape(server.client)("qqavatar_cache_entries") == 2)
        # access log from the file, in text: one line per request with its id
        text = server.output()
        assert re.search(r"INFO  qqavatar\.access \[req [0-9a-f]{8}-[0-9a-f]+\] GET /\?s=App", text)
        assert not any(line.startswith("{") for line in text.splitlines())
        assert not (metrics_dir / "counter_1.db").exists()
    finally:
        server.stop()


# --- the database goes away -------------------------------------------------------------------


@pytest.mark.postgres
def test_readyz_fails_while_the_database_is_unreachable(tmp_path: Path, fake_qlogo: Any) -> None:
    with fresh_database() as url:
        relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
        through = url.set(host="127.0.0.1", port=relay.port)
        server = RunningServer(tmp_path, fake_qlogo.url, {
            "QQAVATAR_DATABASE_URL": as_env(through), "QQAVATAR_READY_TIMEOUT": "1"})
        try:
            assert server.client.get("/readyz").json()["checks"]["database"] == "ok"
            relay.cut()
            started = time.monotonic()
            reply = server.client.get("/readyz")
            assert time.monotonic() - started < 5  # a short timeout, not a hung probe
            assert reply.status_code == 503, reply.text
            assert reply.json()["checks"]["database"].startswith("error: ")
            assert server.client.get("/healthz").status_code == 200
            relay.restore()
            assert wait_for(lambda: server.client.get("/readyz").status_code == 200, timeout=10)
        finally:
            server.stop()
            relay.close()
