"""The fake qlogo as a client sees it: routes, headers, counters, every fault mode."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import pytest
from PIL import Image

from qqavatar.fakeqlogo import HUGE_BYTES, RunningFake, avatar_bytes, penguin_bytes, serve_in_thread
from tests.fakeqlogo_fixture import start_fake_qlogo


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def _client(fake: RunningFake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, trust_env=False, timeout=5) as c:
        yield c


@pytest.fixture
def client(fake: RunningFake, _client: httpx.Client) -> httpx.Client:
    fake.reset()
    return _client


def decode(body: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(body))
    img.load()
    return img


# --- avatars -----------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "fmt"), [("10001", "JPEG"), ("12344", "JPEG"),
                                             ("10005", "PNG"), ("123459", "PNG")])
def test_real_avatars(client: httpx.Client, number: str, fmt: str) -> None:
    r = client.get(f"/g?b=qq&nk={number}&s=140")
    assert r.status_code == 200
    assert r.headers["content-type"] == f"image/{fmt.lower()}"
    assert r.headers["x-info"] == "real data"
    assert r.headers["cache-control"] == "max-age=2592000"
    assert parsedate_to_datetime(r.headers["last-modified"]).year >= 2017
    img = decode(r.content)
    assert (img.format, img.size) == (fmt, (140, 140))


def test_a_number_ending_in_0_gets_the_default_penguin(client: httpx.Client) -> None:
    r = client.get("/g?b=qq&nk=10000&s=100")
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-info"] == "notexist:-109"
    assert r.headers["cache-control"] == "no-cache"
    assert decode(r.content).size == (100, 100)
    assert client.get("/g?b=qq&nk=99990&s=100").content == r.content  # one image for all


def test_content_is_deterministic_and_differs_per_number_kind_and_size(client: httpx.Client) -> None:
    a = client.get("/g?b=qq&nk=10001&s=100").content
    assert client.get("/g?b=qq&nk=10001&s=100").content == a
    assert client.get("/headimg_dl?dst_uin=10001&spec=100").content == a
    assert client.get("/g?b=qq&nk=10011&s=100").content != a
    assert client.get("/g?b=qq&nk=10001&s=40").content != a
    assert client.get("/gh/10001/10001/100/").content != a


def test_group_avatars(client: httpx.Client) -> None:
    r = client.get("/gh/123456/123456/640/")
    assert r.headers["content-type"] == "image/png"
    assert decode(r.content).size == (640, 640)
    assert client.get("/gh/123456/123456/640").status_code == 200  # trailing slash optional
    assert client.get("/gh/123456/654321/640/").status_code == 404


@pytest.mark.parametrize("size", [1, 40, 100, 140, 640, 1000])
def test_any_size_from_1_to_1000(client: httpx.Client, size: int) -> None:
    assert decode(client.get(f"/g?b=qq&nk=10002&s={size}").content).size == (size, size)


@pytest.mark.parametrize(("url", "status"), [
    ("/g?b=qq&nk=10001&s=0", 400),
    ("/g?b=qq&nk=10001&s=1001", 400),
    ("/g?b=qq&nk=10001&s=big", 400),
    ("/g?b=qq&nk=abc&s=40", 400),
    ("/g?b=qq&s=40", 400),
    ("/g?b=wx&nk=10001&s=40", 400),
    ("/nowhere", 404),
])
def test_malformed_requests_are_refused_and_not_counted(
        fake: RunningFake, client: httpx.Client, url: str, status: int) -> None:
    assert client.get(url).status_code == status
    assert fake.stats()["requests"] == 0


# --- control -----------------------------------------------------------------------------


def test_stats_count_every_avatar_request_and_reset_zeroes_them(
        fake: RunningFake, client: httpx.Client) -> None:
    client.get("/g?b=qq&nk=10001&s=100")
    client.get("/g?b=qq&nk=10001&s=100")
    client.get("/headimg_dl?dst_uin=10001&spec=40")
    client.get("/gh/20002/20002/100/")
    fake.fault("error500")
    client.get("/g?b=qq&nk=10001&s=100")
    assert fake.stats() == {"requests": 5, "by_key": {
        "user:10001:100": 3, "user:10001:40": 1, "group:20002:100": 1}}
    fake.reset()
    assert fake.stats() == {"requests": 0, "by_key": {}}
    assert client.get("/g?b=qq&nk=10001&s=100").status_code == 200  # faults cleared too


def test_a_fault_can_target_some_numbers(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("error500", numbers=["10001"])
    assert client.get("/g?b=qq&nk=10001&s=40").status_code == 500
    assert client.get("/g?b=qq&nk=10002&s=40").status_code == 200
    fake.fault("html")  # a global fault replaces everything set before
    assert client.get("/g?b=qq&nk=10001&s=40").headers["content-type"].startswith("text/html")
    fake.fault("none", numbers=["10002"])  # a per-number "none" overrides the global one
    assert client.get("/g?b=qq&nk=10002&s=40").status_code == 200


@pytest.mark.parametrize("body", [b"[1]", b"{nope", b'{"mode": "explode"}',
                                  b'{"mode": "slow", "delay_ms": -1}', b'{"numbers": "10001"}'])
def test_a_bad_fault_request_is_refused(client: httpx.Client, body: bytes) -> None:
    assert client.post("/_fake/fault", content=body).status_code == 400


def test_unknown_control_endpoint(client: httpx.Client) -> None:
    assert client.get("/_fake/nothing").status_code == 404


# --- fault modes -------------------------------------------------------------------------


def test_error500(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("error500")
    r = client.get("/g?b=qq&nk=10001&s=40")
    assert (r.status_code, r.headers["content-type"]) == (500, "text/plain")


def test_html(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("html")
    r = client.get("/g?b=qq&nk=10001&s=40")
    assert r.status_code == 200
    assert r.text.startswith("<html>")


def test_notimage(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("notimage")
    r = client.get("/g?b=qq&nk=10001&s=40")
    assert (r.status_code, r.headers["content-type"]) == (200, "image/jpeg")
    with pytest.raises(OSError):
        decode(r.content)


def test_huge_is_streamed_without_a_length(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("huge")
    with client.stream("GET", "/g?b=qq&nk=10001&s=40") as r:
        assert "content-length" not in r.headers
        assert r.headers["content-type"] == "image/jpeg"
        assert sum(len(c) for c in r.iter_raw()) == HUGE_BYTES


def test_reset_is_a_connection_error(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("reset")
    with pytest.raises(httpx.TransportError) as caught:
        client.get("/g?b=qq&nk=10001&s=40")
    assert not isinstance(caught.value, httpx.TimeoutException)
    assert fake.stats()["requests"] == 1
    fake.fault("none")
    assert client.get("/g?b=qq&nk=10001&s=40").status_code == 200  # the server lives on


def test_hang_never_answers(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("hang")
    with pytest.raises(httpx.ReadTimeout):
        client.get("/g?b=qq&nk=10001&s=40", timeout=0.3)


def test_drip_sends_small_chunks_slowly(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("drip")
    started = time.monotonic()
    with client.stream("GET", "/g?b=qq&nk=10001&s=40", timeout=1) as r:
        assert r.status_code == 200
        chunks = [len(c) for c, _ in zip(r.iter_raw(), range(3), strict=False)]
    assert chunks == [16, 16, 16]
    assert time.monotonic() - started >= 0.35


def test_slow_and_delay(fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("slow", delay_ms=300)
    started = time.monotonic()
    assert client.get("/g?b=qq&nk=10001&s=40").status_code == 200
    assert time.monotonic() - started >= 0.3
    fake.fault("error500", delay_ms=200)  # delay_ms adds to any mode
    started = time.monotonic()
    assert client.get("/g?b=qq&nk=10001&s=40").status_code == 500
    assert time.monotonic() - started >= 0.2


def test_change_gives_a_new_image_every_time(fake: RunningFake, client: httpx.Client) -> None:
    before = client.get("/g?b=qq&nk=10001&s=40")
    fake.fault("change")
    first = client.get("/g?b=qq&nk=10001&s=40")
    second = client.get("/g?b=qq&nk=10001&s=40")
    assert len({before.content, first.content, second.content}) == 3
    assert first.headers["last-modified"] != second.headers["last-modified"]
    fake.fault("none")
    assert client.get("/g?b=qq&nk=10001&s=40").content == second.content  # the version sticks
    fake.reset()
    assert client.get("/g?b=qq&nk=10001&s=40").content == before.content


def test_nohd_makes_640_the_default_and_leaves_smaller_sizes_real(
        fake: RunningFake, client: httpx.Client) -> None:
    fake.fault("nohd", numbers=["10001"])
    hd = client.get("/g?b=qq&nk=10001&s=640")
    assert (hd.headers["x-info"], hd.headers["cache-control"]) == ("notexist:-109", "no-cache")
    assert hd.content == penguin_bytes(640)
    small = client.get("/headimg_dl?dst_uin=10001&spec=140")
    assert small.headers["x-info"] == "real data"
    assert small.content == avatar_bytes("user", "10001", 0, 140)
    assert client.get("/g?b=qq&nk=10002&s=640").headers["x-info"] == "real data"


# --- running it --------------------------------------------------------------------------


def test_command_line_prints_where_it_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "qqavatar.fakeqlogo", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"fake qlogo listening on http://127.0.0.1:{port}\n"
        r = httpx.get(f"http://127.0.0.1:{port}/g?b=qq&nk=10001&s=40", trust_env=False)
        assert r.headers["content-type"] == "image/jpeg"
    finally:
        proc.terminate()
        proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()


def test_serve_in_thread_picks_a_free_port_and_stops() -> None:
    running = serve_in_thread()
    assert running.url == f"http://127.0.0.1:{running.port}"
    assert httpx.get(running.url + "/_fake/stats", trust_env=False).status_code == 200
    # A hanging request must not keep the server from stopping.
    running.fault("hang")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(running.user_url.format(qq=10001, size=40), trust_env=False, timeout=0.2)
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url + "/_fake/stats", trust_env=False)


@pytest.mark.parametrize("in_thread", [False, True])
def test_the_shared_fixture_helper(in_thread: bool) -> None:
    fake = start_fake_qlogo(in_thread=in_thread)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fake.url)
        httpx.get(fake.group_url.format(group=20002, size=100), trust_env=False)
        assert fake.count("group", "20002", 100) == 1
        fake.fault("error500", delay_ms=1, numbers=["20002"])
        assert httpx.get(fake.group_url.format(group=20002, size=100), trust_env=False).status_code == 500
        fake.reset()
        assert fake.stats()["requests"] == 0
    finally:
        fake.stop()
    fake.stop()  # idempotent
