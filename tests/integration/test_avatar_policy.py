"""The avatar cache policy through real servers and the fake qlogo with injected faults.

Three servers with their own settings (short TTLs so that expiry takes a second, not a
day): `fresh` (stale-while-revalidate, negative cache), `fragile` (stale-if-error, circuit
breaker), `disk` (disk tier across a restart, upstream alternates, HD fallback, formats,
defaults, conditional requests). Each test uses its own QQ numbers, so the counters of
the shared fake qlogo are evidence of exactly its own upstream requests.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from qqavatar.avatars import OUTPUT_FORMATS
from qqavatar.avatars.identicon import render
from qqavatar.fakeqlogo import RunningFake, avatar_bytes, penguin_bytes, serve_in_thread
from tests.server_fixture import RunningServer

P = "客户端非法请求："
Call = Callable[..., httpx.Response]


def start(tmp: Path, upstream: str, env: dict[str, str]) -> tuple[RunningServer, str]:
    """A server and the key of an app on it."""
    server = RunningServer(tmp, upstream, env)
    app = server.create_app("policy")
    server.wait_for_app(app["app_key"])
    return server, app["app_key"]


def caller(server: RunningServer, app_key: str) -> Call:
    def call(*, headers: dict[str, str] | None = None, method: str = "GET",
             service: str = "App.QQ.UserImage", **params: str) -> httpx.Response:
        return server.client.request(method, "/", headers=headers,
                                     params={"s": service, "app_key": app_key, **params})
    return call


def data(response: httpx.Response) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(response.content)
    assert reply["ret"] == 200, reply
    return reply["data"]  # type: ignore[no-any-return]


def decode(body: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(body))
    img.load()
    return img


def until_not_stale(call: Call, **params: str) -> httpx.Response:
    for _ in range(200):
        response = call(**params)
        if response.headers["x-cache"] != "STALE":
            return response
        time.sleep(0.02)
    raise AssertionError("still STALE after the background refresh should have landed")


# --- fresh: stale-while-revalidate and the negative cache ----------------------------------

TTL = 2


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, fake_qlogo: RunningFake) -> Iterator[Call]:
    server, app_key = start(tmp_path_factory.mktemp("fresh"), fake_qlogo.url, {
        "QQAVATAR_CACHE_TTL": str(TTL), "QQAVATAR_CACHE_DEFAULT_TTL": str(TTL),
        "QQAVATAR_STALE_TTL": "3600", "QQAVATAR_NEGATIVE_TTL": str(TTL),
        "QQAVATAR_UPSTREAM_TIMEOUT": "0.5"})
    yield caller(server, app_key)
    server.stop()


def max_age(response: httpx.Response) -> int:
    control = response.headers["cache-control"]
    assert control.startswith("public, max-age="), control
    return int(control.rsplit("=", 1)[1])


def test_x_cache_says_miss_then_hit_and_max_age_follows_the_ttl(fresh: Call) -> None:
    first = fresh(qq="5100001")
    assert (first.status_code, first.headers["x-cache"]) == (200, "MISS")
    assert 0 <= max_age(first) <= TTL
    again = fresh(qq="5100001")
    assert again.headers["x-cache"] == "HIT" and again.content == first.content
    as_json = fresh(qq="5100001", output="0")  # envelopes carry it as well
    assert as_json.headers["x-cache"] == "HIT"
    assert as_json.headers["cache-control"] == "no-store"
    assert fresh(qq="5100010", output="0").headers["x-cache"] == "MISS"


def test_an_expired_avatar_is_served_stale_then_revalidated(
        fresh: Call, fake_qlogo: RunningFake) -> None:
    old = fresh(qq="5100002")
    time.sleep(TTL + 0.1)
    fake_qlogo.fault("change", numbers=["5100002"])  # qlogo has a new picture now
    stale = fresh(qq="5100002")
    assert (stale.status_code, stale.headers["x-cache"]) == (200, "STALE")
    assert stale.content == old.content
    assert max_age(stale) == 0  # not to be kept by anyone
    renewed = until_not_stale(fresh, qq="5100002")
    assert renewed.headers["x-cache"] == "REVALIDATED"
    assert renewed.content == avatar_bytes("user", "5100002", 1, 100) != old.content
    assert renewed.headers["etag"] != old.headers["etag"]
    assert fresh(qq="5100002").headers["x-cache"] == "HIT"
    assert fake_qlogo.count("user", "5100002", 100) == 2  # ONE background refresh


def test_a_hanging_upstream_does_not_hold_up_stale_answers(
        fresh: Call, fake_qlogo: RunningFake) -> None:
    old = fresh(qq="5100003", output="0")
    time.sleep(TTL + 0.1)
    fake_qlogo.fault("hang", numbers=["5100003"])
    for _ in range(5):
        stale = fresh(qq="5100003", output="0")
        assert stale.headers["x-cache"] == "STALE"
        assert data(stale) == data(old)  # err_code 0, the old picture
    assert fake_qlogo.count("user", "5100003", 100) == 2


@pytest.mark.parametrize(("number", "mode", "err_code", "status"), [
    ("5100004", "error500", -3, 502), ("5100005", "html", -3, 502),
    ("5100006", "huge", -4, 502), ("5100007", "reset", -1, 502), ("5100008", "drip", -2, 504)])
def test_a_failure_is_remembered_for_negative_ttl(
        fresh: Call, fake_qlogo: RunningFake, number: str, mode: str, err_code: int,
        status: int) -> None:
    fake_qlogo.fault(mode, numbers=[number])  # type: ignore[arg-type]
    first = fresh(qq=number, output="0")
    assert (data(first)["err_code"], first.headers["x-cache"]) == (err_code, "MISS")
    for _ in range(3):
        again = fresh(qq=number, output="0")
        assert data(again) == data(first)
        assert again.headers["x-cache"] == "HIT"  # a remembered failure, not an avatar
        image = fresh(qq=number)
        assert image.status_code == status
        assert json.loads(image.content)["data"]["err_code"] == err_code
    assert fake_qlogo.count("user", number, 100) == 1


def test_a_remembered_failure_is_forgotten_after_negative_ttl(
        fresh: Call, fake_qlogo: RunningFake) -> None:
    fake_qlogo.fault("error500", numbers=["5100009"])
    assert data(fresh(qq="5100009", output="0"))["err_code"] == -3
    fake_qlogo.fault("none", numbers=["5100009"])
    assert data(fresh(qq="5100009", output="0"))["err_code"] == -3  # still remembered
    time.sleep(TTL + 0.1)
    healed = fresh(qq="5100009")
    assert (healed.status_code, healed.headers["x-cache"]) == (200, "MISS")
    assert fake_qlogo.count("user", "5100009", 100) == 2


# --- fragile: stale-if-error and the circuit breaker ---------------------------------------


COOLDOWN = 2


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory,
            fake_qlogo: RunningFake) -> Iterator[Call]:
    server, app_key = start(tmp_path_factory.mktemp("fragile"), fake_qlogo.url, {
        "QQAVATAR_CACHE_TTL": "1", "QQAVATAR_STALE_TTL": "0", "QQAVATAR_NEGATIVE_TTL": "0",
        "QQAVATAR_CIRCUIT_THRESHOLD": "3", "QQAVATAR_CIRCUIT_COOLDOWN": str(COOLDOWN),
        "QQAVATAR_UPSTREAM_TIMEOUT": "0.5"})
    yield caller(server, app_key)
    server.stop()


FAULTS = ["error500", "hang", "html", "huge", "reset", "drip"]


def test_a_failing_upstream_is_answered_with_the_previous_copy(
        fragile: Call, fake_qlogo: RunningFake) -> None:
    numbers = {mode: str(5200001 + i) for i, mode in enumerate(FAULTS)}
    before = {mode: fragile(qq=number) for mode, number in numbers.items()}
    time.sleep(1.1)  # every copy has expired; none may be served stale except on error
    for i, (mode, number) in enumerate(numbers.items()):
        fake_qlogo.fault(mode, numbers=[number])  # type: ignore[arg-type]
        image = fragile(qq=number)
        assert (image.status_code, image.headers["x-cache"]) == (200, "STALE"), mode
        assert image.content == before[mode].content
        assert max_age(image) == 0
        as_json = data(fragile(qq=number, output="0"))
        assert (as_json["err_code"], as_json["err_msg"]) == (0, "")
        assert base64.b64decode(as_json["img"]) == before[mode].content
        # A success in between: six different avatars failing must not open the breaker.
        assert fragile(qq=str(5200101 + i)).headers["x-cache"] == "MISS"
    for number in numbers.values():
        assert fake_qlogo.count("user", number, 100) == 3  # the first fetch, two attempts


def test_the_breaker_opens_fails_fast_and_recovers(fragile: Call, fake_qlogo: RunningFake) -> None:
    kept = fragile(qq="5200201")
    time.sleep(1.1)  # expired: only stale-if-error may serve it now
    fake_qlogo.fault("error500")
    for number in ("5200202", "5200203", "5200204"):
        assert data(fragile(qq=number, output="0"))["err_code"] == -3
    fast = fragile(qq="5200205", output="0")
    assert data(fast) == {"err_code": -5, "err_msg": "头像服务暂时不可用，请稍后重试", "img": ""}
    assert fast.headers["x-cache"] == "MISS"
    image = fragile(qq="5200205")
    assert image.status_code == 503
    assert fake_qlogo.count("user", "5200205", 100) == 0  # failing fast: qlogo left alone
    stale = fragile(qq="5200201")  # a good copy beats failing fast
    assert (stale.headers["x-cache"], stale.content) == ("STALE", kept.content)

    fake_qlogo.fault("none")
    time.sleep(COOLDOWN + 0.1)  # the cool-down is over: the next call probes
    probe = fragile(qq="5200205")
    assert (probe.status_code, probe.headers["x-cache"]) == (200, "MISS")
    assert fragile(qq="5200206").status_code == 200
    assert fake_qlogo.count("user", "5200205", 100) == 1


# --- disk: disk tier, alternates, HD fallback, formats, defaults, conditional requests ----


@pytest.fixture(scope="module")
def primary() -> Iterator[RunningFake]:
    """The disk server's first upstream; `fake_qlogo` is its alternate (/headimg_dl)."""
    with serve_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def disk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("disk")


def disk_env(fake_qlogo: RunningFake, disk_dir: Path) -> dict[str, str]:
    return {"QQAVATAR_DISK_CACHE_DIR": str(disk_dir / "avatars"),
            "QQAVATAR_DISK_CACHE_MAX_BYTES": "64MiB",
            "QQAVATAR_UPSTREAM_USER_URLS": json.dumps(
                [fake_qlogo.url + "/headimg_dl?dst_uin={qq}&spec={size}"])}


@pytest.fixture(scope="module")
def disk_server(disk_dir: Path, fake_qlogo: RunningFake,
                primary: RunningFake) -> Iterator[tuple[RunningServer, str]]:
    server, app_key = start(disk_dir, primary.url, disk_env(fake_qlogo, disk_dir))
    yield server, app_key
    server.stop()  # again, after the restart test: a no-op


@pytest.fixture
def disk(disk_server: tuple[RunningServer, str]) -> Call:
    return caller(*disk_server)


@pytest.fixture(autouse=True)
def _clear_primary_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "primary" in request.fixturenames:
        request.getfixturevalue("primary").fault("none")


@pytest.mark.parametrize(("number", "mode"), [
    ("5300001", "error500"), ("5300002", "reset"), ("5300003", "html"), ("5300004", "hang")])
def test_a_failing_primary_falls_back_to_the_alternate(
        disk: Call, primary: RunningFake, fake_qlogo: RunningFake, number: str,
        mode: str) -> None:
    primary.fault(mode, numbers=[number])  # type: ignore[arg-type]
    response = disk(qq=number)
    assert (response.status_code, response.headers["x-cache"]) == (200, "MISS")
    assert response.content == avatar_bytes("user", number, 0, 100)
    assert primary.count("user", number, 100) == 1
    assert fake_qlogo.count("user", number, 100) == 1  # via /headimg_dl


def test_640_without_hd_serves_the_largest_real_avatar(disk: Call, primary: RunningFake) -> None:
    primary.fault("nohd", numbers=["5300011"])
    image = disk(qq="5300011", size="640")
    assert image.headers["x-avatar-size"] == "140"
    assert image.headers["x-avatar-default"] == "0"
    assert decode(image.content).size == (140, 140)
    assert image.content == avatar_bytes("user", "5300011", 0, 140)
    answer = data(disk(qq="5300011", size="640", output="0"))
    assert list(answer) == ["err_code", "err_msg", "img", "is_default", "content_type", "size"]
    assert (answer["size"], answer["is_default"]) == (140, False)
    # Without an avatar of its own at any size: the default image, at 640.
    penguin = disk(qq="5300010", size="640")
    assert (penguin.headers["x-avatar-size"], penguin.headers["x-avatar-default"]) == ("640", "1")
    assert penguin.content == penguin_bytes(640)
    assert primary.count("user", "5300011", 640) == 1


@pytest.mark.parametrize(("service", "param", "size"), [
    ("App.QQ.UserImage", "qq", "40"), ("App.QQ.GroupImage", "group", "640")])
def test_the_size_served_is_always_given(disk: Call, service: str, param: str, size: str) -> None:
    image = disk(service=service, size=size, **{param: "5300021"})
    assert image.headers["x-avatar-size"] == size
    assert decode(image.content).size == (int(size), int(size))
    answer = data(disk(service=service, size=size, output="0", **{param: "5300021"}))
    assert answer["size"] == int(size)


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_format_transcodes_and_the_content_type_follows(disk: Call, fmt: str) -> None:
    original = disk(qq="5300031", size="140")
    image = disk(qq="5300031", size="140", format=fmt)
    assert image.headers["content-type"] == f"image/{fmt}"
    assert image.headers["x-cache"] in ("MISS", "HIT")  # jpeg is the original itself
    decoded = decode(image.content)
    assert (decoded.format, decoded.size) == (fmt.upper(), (140, 140))
    assert (image.content == original.content) == (fmt == "jpeg")
    again = disk(qq="5300031", size="140", format=fmt)
    assert again.headers["x-cache"] == "HIT" and again.content == image.content
    answer = data(disk(qq="5300031", size="140", format=fmt, output="0"))
    assert answer["content_type"] == f"image/{fmt}"
    assert base64.b64decode(answer["img"]) == image.content


@pytest.mark.parametrize(("params", "message"), [
    ({"format": "gif"}, f"参数format应该为：{'/'.join(OUTPUT_FORMATS)}，但现在format = gif"),
    ({"format": "PNG"}, f"参数format应该为：{'/'.join(OUTPUT_FORMATS)}，但现在format = PNG"),
    ({"default": "mm"}, "参数default应该为：qq/404/identicon，但现在default = mm"),
])
def test_bad_format_or_default_is_a_400(disk: Call, params: dict[str, str], message: str) -> None:
    reply = json.loads(disk(qq="5300032", output="0", **params).content)
    assert (reply["ret"], reply["msg"]) == (400, P + message)
    image = disk(qq="5300032", **params)
    assert image.status_code == 400


def test_default_404(disk: Call) -> None:
    answer = data(disk(qq="5300040", default="404", output="0"))
    assert answer == {"err_code": 1, "err_msg": "该QQ号没有设置头像", "img": ""}
    image = disk(qq="5300040", default="404")
    assert image.status_code == 404
    assert json.loads(image.content)["data"]["err_code"] == 1
    group = data(disk(service="App.QQ.GroupImage", group="5300040", default="404", output="0"))
    assert (group["err_code"], group["err_msg"]) == (1, "该QQ群没有设置头像")
    assert disk(qq="5300041", default="404").status_code == 200  # has an avatar of its own
    assert disk(qq="5300040").headers["x-avatar-default"] == "1"  # default=qq: as before


def test_default_identicon_is_deterministic(disk: Call) -> None:
    first = disk(qq="5300050", default="identicon", size="140")
    assert first.headers["content-type"] == "image/png"
    assert first.content == render("user:5300050", 140, "png")
    assert disk(qq="5300050", default="identicon", size="140").content == first.content
    assert disk(qq="5300060", default="identicon", size="140").content != first.content
    webp = disk(qq="5300050", default="identicon", size="40", format="webp")
    assert (decode(webp.content).format, decode(webp.content).size) == ("WEBP", (40, 40))
    answer = data(disk(qq="5300050", default="identicon", output="0"))
    assert answer["is_default"] is True and answer["size"] == 100


def test_conditional_requests(disk: Call) -> None:
    first = disk(qq="5300071")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert parsedate_to_datetime(modified).year >= 2017  # qlogo's own Last-Modified
    assert "vary" not in first.headers  # the answer depends on the URL only
    when = parsedate_to_datetime(modified).timestamp()

    def status(**headers: str) -> int:
        return disk(qq="5300071", headers=headers).status_code

    assert status(**{"If-Modified-Since": modified}) == 304
    assert status(**{"If-Modified-Since": formatdate(when + 60, usegmt=True)}) == 304
    assert status(**{"If-Modified-Since": formatdate(when - 60, usegmt=True)}) == 200
    assert status(**{"If-Modified-Since": "yesterday"}) == 200
    # If-None-Match wins over If-Modified-Since, both ways (RFC 9110 §13.2.2).
    assert status(**{"If-None-Match": '"other"', "If-Modified-Since": modified}) == 200
    assert status(**{"If-None-Match": etag,
                     "If-Modified-Since": formatdate(when - 60, usegmt=True)}) == 304
    not_modified = disk(qq="5300071", headers={"If-None-Match": etag})
    assert not_modified.content == b""
    for name in ("etag", "last-modified", "x-avatar-size"):
        assert not_modified.headers[name] == first.headers[name]
    assert not_modified.headers["x-cache"] == "HIT"
    assert not_modified.headers["cache-control"].startswith("public, max-age=")
    # Conditional requests are GET/HEAD semantics; a POST gets the image.
    posted = disk(qq="5300071", method="POST", headers={"If-None-Match": etag})
    assert posted.status_code == 200 and posted.content == first.content


def test_head_has_the_headers_of_get_and_no_body(disk: Call) -> None:
    get = disk(qq="5300081", size="140")
    head = disk(qq="5300081", size="140", method="HEAD")
    assert (head.status_code, head.content) == (200, b"")
    for name in ("content-type", "content-length", "etag", "last-modified", "x-avatar-size",
                 "x-avatar-default"):
        assert head.headers[name] == get.headers[name]
    assert head.headers["x-cache"] == "HIT"
    assert disk(qq="5300081", size="140", method="HEAD",
                headers={"If-None-Match": get.headers["etag"]}).status_code == 304


def test_a_restart_reads_the_disk_tier_instead_of_the_upstream(
        disk_server: tuple[RunningServer, str], disk_dir: Path, fake_qlogo: RunningFake,
        primary: RunningFake) -> None:
    server, app_key = disk_server
    call = caller(server, app_key)
    asked = [("5300091", "100", {}), ("5300092", "640", {}), ("5300093", "40", {}),
             ("5300090", "100", {})]
    primary.fault("nohd", numbers=["5300092"])
    before = {number: call(qq=number, size=size, **extra) for number, size, extra in asked}
    assert all(r.headers["x-cache"] == "MISS" for r in before.values())
    server.stop()  # waits for the disk writes
    stored = list((disk_dir / "avatars").rglob("*.avatar"))
    assert len(stored) >= len(asked)
    requests = (primary.stats()["requests"], fake_qlogo.stats()["requests"])

    restarted = RunningServer(disk_dir, primary.url, disk_env(fake_qlogo, disk_dir))
    try:
        restarted.wait_for_app(app_key)  # same database: same app
        again = caller(restarted, app_key)
        for number, size, extra in asked:
            response = again(qq=number, size=size, **extra)
            assert (response.status_code, response.headers["x-cache"]) == (200, "HIT")
            assert response.content == before[number].content
            assert response.headers["etag"] == before[number].headers["etag"]
        assert again(qq="5300092", size="640").headers["x-avatar-size"] == "140"
        assert (primary.stats()["requests"], fake_qlogo.stats()["requests"]) == requests
    finally:
        restarted.stop()
