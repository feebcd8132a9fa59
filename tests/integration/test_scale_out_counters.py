"""Two real servers on one fresh PostgreSQL database and one Redis of the test's own behave
as one for counters: apps, quotas (exact under concurrency, and across a Redis restart) and
the counts stored when both stop.

The tests run in file order on one pair of servers (each start costs a second of CPU or
more); `Cluster.ledger` keeps every answered call, to compare with what is stored.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy.engine import URL

from qqavatar.limits.quota import periods_at
from tests.integration.test_limits import QUOTA_USED_UP, TOO_FAST, update, wait_for_probe
from tests.integration.test_members import api, avatar, register_and_login
from tests.postgres_fixture import as_env, fresh_database, stored_calls, stored_quota_usage
from tests.redis_fixture import RedisProcess
from tests.server_fixture import RunningServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

IMAGE = "App.QQ.UserImage"


class Cluster:
    def __init__(self, servers: list[RunningServer], redis: RedisProcess,
                 database: URL) -> None:
        self.servers = servers
        self.redis = redis
        self.database = database
        self.ledger: Counter[tuple[str, int]] = Counter()  # (app_key, ret): calls answered
        self.apps: dict[str, str] = {}                     # name: app_key
        self._lock = threading.Lock()

    def call(self, server: RunningServer, app_key: str,
             client: httpx.Client | None = None) -> dict[str, Any]:
        reply: dict[str, Any] = (client or server.client).get("/", params={
            "s": IMAGE, "app_key": app_key, "qq": "10001", "output": "0"}).json()
        if reply["ret"] in (200, 413):  # (a 406 may be an app not known yet: counted apart)
            with self._lock:
                self.ledger[(app_key, reply["ret"])] += 1
        return reply

    def burst(self, app_key: str, calls: int, *,
              refusal: str = QUOTA_USED_UP) -> Counter[int]:
        """`calls` concurrent calls, alternating between the servers: answers by ret (any
        other than 200 must say `refusal`)."""
        clients = [httpx.Client(base_url=server.url, timeout=30.0,
                                limits=httpx.Limits(max_connections=calls))
                   for server in self.servers]
        pairs = [(self.servers[i % 2], clients[i % 2]) for i in range(calls)]
        try:
            with concurrent.futures.ThreadPoolExecutor(calls) as pool:
                # Connect first, so the calls themselves land close together.
                list(pool.map(lambda pair: pair[1].get("/", params={"s": "App.Site.Index"}),
                              pairs))
                replies = list(pool.map(lambda pair: self.call(pair[0], app_key, pair[1]),
                                        pairs))
        finally:
            for client in clients:
                client.close()
        assert {reply["msg"] for reply in replies if reply["ret"] != 200} <= {refusal}
        return Counter(reply["ret"] for reply in replies)

    def set_limits(self, app_key: str, *flags: str) -> None:
        """Update through the first server; wait until both have it (see test_limits.py)."""
        update(self.servers[0], app_key, "--domains", "127.0.0.1", *flags)
        for server in self.servers:
            wait_for_probe(server, app_key, 406)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, fake_qlogo: Any) -> Iterator[Cluster]:
    with fresh_database() as database:
        redis = RedisProcess(tmp_path_factory.mktemp("redis"))
        # A Redis round trip slower than the timeout counts as Redis down, and quotas fall
        # back to each server's own counts: on a loaded test machine, 0.25 s is too short.
        env = {"QQAVATAR_DATABASE_URL": as_env(database), "QQAVATAR_REDIS_URL": redis.url,
               "QQAVATAR_REDIS_TIMEOUT": "2"}
        servers: list[RunningServer] = []
        try:
            for name in ("a", "b"):
                servers.append(RunningServer(tmp_path_factory.mktemp(f"server_{name}"),
                                             fake_qlogo.url, env))
            yield Cluster(servers, redis, database)
        finally:
            for server in servers:
                server.stop()
            redis.stop()


def test_an_app_created_on_one_server_is_usable_on_the_other_within_2_s(
        cluster: Cluster) -> None:
    first, second = cluster.servers
    for name in ("free", "metered"):
        cluster.apps[name] = first.create_app(name)["app_key"]  # `qqavatar app create`
    started = time.monotonic()
    for app_key in cluster.apps.values():
        for server in (second, first):  # (the first server learns of it as the second does)
            while cluster.call(server, app_key)["ret"] == 406:
                elapsed = time.monotonic() - started
                assert elapsed < 2.0, f"{server.url} does not know the app after {elapsed:.1f} s"
                time.sleep(0.05)


def test_a_daily_quota_allows_exactly_n_calls_across_both(cluster: Cluster) -> None:
    metered = cluster.apps["metered"]
    used = cluster.ledger[(metered, 200)]  # today's calls so far count against the quota
    # Calls made while the app had no quota were counted by each server alone: each learns
    # the other's through the database within a flush or two (1 s each), not at once.
    day, _ = periods_at(time.time())
    deadline = time.monotonic() + 10
    while stored_quota_usage(cluster.database).get((metered, day), 0) < used:
        assert time.monotonic() < deadline, "the servers did not store their counts"
        time.sleep(0.1)
    time.sleep(2.2)  # two more flushes: each server has read the other's count back
    cluster.set_limits(metered, "--daily-quota", "30")
    assert cluster.burst(metered, 80) == Counter({200: 30 - used, 413: 50 + used})


def test_a_redis_restart_mid_run_fails_no_request_and_resets_no_quota(
        cluster: Cluster) -> None:
    free, metered = cluster.apps["free"], cluster.apps["metered"]
    answers: Counter[tuple[str, int, int]] = Counter()  # (app_key, server, ret)
    failures: list[BaseException] = []
    lock = threading.Lock()
    running = threading.Event()
    running.set()

    def traffic(index: int) -> None:
        server = cluster.servers[index]
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            for _ in range(10_000):  # bounded; stopped by the event long before
                if not running.is_set():
                    return
                for app_key in (free, metered):
                    try:
                        ret = cluster.call(server, app_key, client)["ret"]
                    except (httpx.HTTPError, ValueError) as exc:
                        failures.append(exc)
                    else:
                        with lock:
                            answers[(app_key, index, ret)] += 1

    threads = [threading.Thread(target=traffic, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    try:
        # Both servers have answered the used-up app (from Redis or from the database's
        # totals) before Redis goes: then what they know holds it while Redis is away.
        deadline = time.monotonic() + 10
        while not (answers[(metered, 0, 413)] and answers[(metered, 1, 413)]):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        cluster.redis.stop()   # killed: as a crash looks to the servers
        time.sleep(0.7)
        cluster.redis.start()  # empty: this Redis keeps nothing on disk
        time.sleep(1.5)        # past the servers' 1 s retry: back on Redis
    finally:
        running.clear()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures
    assert {ret for _, _, ret in answers} == {200, 413}  # nothing failed
    assert sum(calls for (app_key, _, ret), calls in answers.items()
               if app_key == metered and ret == 200) == 0  # the quota held throughout

    # Not reset: 10 more calls allowed means exactly 10 more, counted from the 30 before.
    # (The app is bound to a domain already: the probe cannot tell when the new quota has
    # arrived, a first admitted call on each server does.)
    update(cluster.servers[0], metered, "--daily-quota", "40")
    for server in cluster.servers:
        deadline = time.monotonic() + 10
        while cluster.call(server, metered)["ret"] != 200:
            assert time.monotonic() < deadline, f"{server.url} still has the old quota"
            time.sleep(0.05)
    assert cluster.burst(metered, 28) == Counter({200: 8, 413: 20})


def test_rate_limits_live_in_the_shared_redis_by_default(cluster: Cluster) -> None:
    free = cluster.apps["free"]
    cluster.set_limits(free, "--rate-limit", "3")
    answers = cluster.burst(free, 12, refusal=TOO_FAST)
    assert answers[408] > 0
    # QQAVATAR_RATE_LIMIT_STORAGE is not set: the window is kept in QQAVATAR_REDIS_URL.
    with redis.Redis.from_url(cluster.redis.url) as client:
        assert client.keys(f"*qqavatar-rate*{free}*")


def test_a_logout_on_one_server_reaches_the_other_within_2_s(cluster: Cluster) -> None:
    first, second = cluster.servers
    app = first.create_app("members")  # not in cluster.apps: its calls are not in the ledger
    for server in cluster.servers:
        server.wait_for_app(app["app_key"])
    _, uuid, token = register_and_login(first, app)
    assert avatar(second, app, uuid=uuid, token=token)["ret"] == 200  # a live session there
    assert api(first, app, "App.User.Logout", uuid=uuid, token=token)["data"]["err_code"] == 0
    started = time.monotonic()
    while (answer := avatar(second, app, uuid=uuid, token=token))["ret"] == 200:
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"the other server still takes the session after {elapsed:.1f} s"
        time.sleep(0.05)
    assert answer["ret"] == 401, answer


def test_after_both_stop_the_stored_counters_equal_the_calls_made(cluster: Cluster) -> None:
    for server in cluster.servers:
        assert server.stop() == 0  # SIGTERM: each stores what it counted last
    for app_key in cluster.apps.values():
        stored = stored_calls(cluster.database, app_key)
        for ret in (200, 413):
            assert stored[(IMAGE, ret)] == cluster.ledger[(app_key, ret)], (app_key, ret)
    # The quota's own counts: every admitted call, today and this month.
    day, month = periods_at(time.time())
    usage = stored_quota_usage(cluster.database)
    for app_key in cluster.apps.values():
        admitted = cluster.ledger[(app_key, 200)]
        assert (usage[(app_key, day)], usage[(app_key, month)]) == (admitted, admitted)
    assert usage[(cluster.apps["metered"], day)] == 40


def test_stopped_servers_left_no_tracebacks(cluster: Cluster) -> None:
    for server in cluster.servers:
        assert "Traceback" not in server.output(), server.output()[-3000:]

