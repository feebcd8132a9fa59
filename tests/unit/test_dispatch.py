"""web/dispatch.py, the rules both server edges share: which paths are API calls, the method,
which body is read and within which bounds, the service, and when an answer closes the
connection. No server: a Gateway on a runtime with an in-memory app table, and a body
source that records whether it was read.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from qqavatar import identity
from qqavatar.apicall import ApiReply, ApiRequest
from qqavatar.avatars import AvatarService
from qqavatar.components import Runtime
from qqavatar.gateway import Gateway
from qqavatar.protocol.errors import ApiError
from qqavatar.settings import Settings
from qqavatar.web.dispatch import (
    CLOSE,
    ROOT,
    Headers,
    answer_call,
    api_service,
    head_of,
    merge_slashes,
    page_refusal,
    read_page_body,
)
from qqavatar.web.pagebody import MAX_PAGE_BODY_BYTES, MAX_PAGE_FIELDS
from qqavatar.web.request import MAX_BODY_BYTES, MAX_PARAMS, too_slow

pytestmark = pytest.mark.anyio

P = "客户端非法请求："


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Body:
    """A request body as a server hands it over; `reads` counts how often it was asked for."""

    def __init__(self, data: bytes = b"", *, slow: bool = False) -> None:
        self.data, self.slow, self.reads = data, slow, 0

    @staticmethod
    async def read(source: Body, headers: Headers, limit: int, timeout: float) -> bytes:
        source.reads += 1
        if source.slow:
            raise too_slow(timeout)
        return source.data


@pytest.fixture
def gateway() -> Gateway:
    runtime = Runtime(settings=Settings(), apps={},
                      avatars=cast(AvatarService, None))  # no call here reaches an avatar
    return Gateway(runtime, clock=lambda: 1_700_000_000.0)


async def answer(gateway: Gateway, method: str, query: str, headers: dict[str, str] | None = None,
                 body: Body | None = None, service: str = ROOT) -> ApiReply:
    request = ApiRequest(service, {}, headers or {}, "127.0.0.1", method)
    return await answer_call(gateway, request, query, headers or {}, Body.read, body or Body(),
                             10.0)


def envelope(reply: ApiReply) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(reply.body)
    return decoded


def test_api_paths_in_both_url_styles() -> None:
    assert api_service("/") == ROOT
    assert api_service("/api/App/QQ/UserImage") == "App.QQ.UserImage"
    assert api_service("/api/App/QQ/UserImage/") == "App.QQ.UserImage"
    assert api_service("/api/Site/Index") == "Site.Index"
    for page in ("/favicon.ico", "/api/App", "/api/App/QQ/UserImage/More", "/api/App/Q-Q/X",
                 "/docs", "/api/App/QQ/UserImage?x", ""):
        assert api_service(page) is None, page
    assert merge_slashes("//api//App///QQ/UserImage") == "/api/App/QQ/UserImage"
    assert api_service(merge_slashes("//")) == ROOT


async def test_the_service_comes_from_the_path_else_from_the_parameters(gateway: Gateway
                                                                        ) -> None:
    by_path = await answer(gateway, "GET", "", service="App.Site.Index")
    by_query = await answer(gateway, "GET", "s=App.Site.Index")
    assert envelope(by_path)["ret"] == envelope(by_query)["ret"] == 200
    unnamed = envelope(await answer(gateway, "GET", "s=App.QQ."))
    assert (unnamed["ret"], unnamed["msg"]) == (400, P + "非法服务：App.QQ.")


async def test_other_methods_are_405_and_close_only_with_a_body(gateway: Gateway) -> None:
    bare = await answer(gateway, "PUT", "s=App.Site.Index")
    assert (bare.status, bare.body) == (405, b"Method PUT Not Allowed")
    assert ("Allow", "GET, POST, HEAD") in bare.headers and CLOSE not in bare.headers
    sent = Body(b"x" * 10)
    with_body = await answer(gateway, "PUT", "", {"content-length": "10"}, sent)
    assert with_body.status == 405 and CLOSE in with_body.headers and sent.reads == 0


async def test_a_get_with_a_body_is_answered_unread_and_closes(gateway: Gateway) -> None:
    for headers in ({"content-length": "5"}, {"transfer-encoding": "chunked"}):
        sent = Body(b"s=App.X.Y")
        reply = await answer(gateway, "GET", "s=App.Site.Index", headers, sent)
        assert envelope(reply)["ret"] == 200 and CLOSE in reply.headers and sent.reads == 0
    plain = await answer(gateway, "GET", "s=App.Site.Index", {"content-length": "0"})
    assert CLOSE not in plain.headers


async def test_a_refused_query_with_a_body_left_unread_closes(gateway: Gateway) -> None:
    """The query is refused before the body is read: the body stays on the connection, so the
    answer must close it (on RSGI this answer used to leave it open)."""
    many = "&".join(f"p{i}=1" for i in range(MAX_PARAMS + 1))
    for method in ("GET", "POST"):
        sent = Body(b"a=1")
        reply = await answer(gateway, method, many, {"content-length": "3"}, sent)
        assert envelope(reply)["msg"] == P + f"参数不能超过{MAX_PARAMS}个"
        assert CLOSE in reply.headers and sent.reads == 0, method
    bare = await answer(gateway, "GET", many)
    assert CLOSE not in bare.headers


async def test_a_post_body_is_read_and_wins_over_the_query(gateway: Gateway) -> None:
    sent = Body(b"s=App.Site.Index&callback=cb")
    reply = await answer(gateway, "POST", "s=App.X.Y", {
        "content-length": str(len(sent.data)),
        "content-type": "application/x-www-form-urlencoded"}, sent)
    assert reply.body.startswith(b"cb(") and sent.reads == 1 and CLOSE not in reply.headers


async def test_a_post_body_over_the_cap_is_refused_unread(gateway: Gateway) -> None:
    for declared in (str(MAX_BODY_BYTES + 1), "12abc", "-1"):
        sent = Body()
        reply = await answer(gateway, "POST", "s=App.Site.Index&callback=cb",
                             {"content-length": declared}, sent)
        assert reply.body.startswith(b"cb("), declared  # shaped by the query
        assert (sent.reads, CLOSE in reply.headers) == (0, True), declared
        assert f"请求体不能超过{MAX_BODY_BYTES}字节" in reply.body.decode()


async def test_a_body_refused_part_way_closes_one_refused_whole_does_not(gateway: Gateway
                                                                         ) -> None:
    slow = await answer(gateway, "POST", "", {"transfer-encoding": "chunked"},
                        Body(slow=True))
    assert envelope(slow)["msg"] == P + "请求体未在10秒内发送完毕" and CLOSE in slow.headers
    fields = "&".join(f"p{i}=1" for i in range(MAX_PARAMS + 1)).encode()
    whole = await answer(gateway, "POST", "", {"content-length": str(len(fields))},
                         Body(fields))
    assert envelope(whole)["msg"] == P + f"参数不能超过{MAX_PARAMS}个"
    assert CLOSE not in whole.headers


async def test_page_bodies_have_the_pages_bounds() -> None:
    large = {"content-length": str(MAX_PAGE_BODY_BYTES + 1)}
    unread = Body()
    with pytest.raises(ApiError) as refused:
        await read_page_body(large, Body.read, unread, 10.0)
    assert unread.reads == 0
    refusal = page_refusal(refused.value)
    assert (refusal.status, CLOSE in refusal.headers) == (413, True)
    assert refusal.body.decode() == P + f"请求体不能超过{MAX_PAGE_BODY_BYTES}字节"
    form = "&".join(f"f{i}=1" for i in range(MAX_PAGE_FIELDS + 1)).encode()
    with pytest.raises(ApiError) as too_many:
        await read_page_body({"content-length": str(len(form))}, Body.read, Body(form), 10.0)
    refusal = page_refusal(too_many.value)
    assert (refusal.status, CLOSE in refusal.headers) == (400, False)
    small = b"token=abc"
    assert await read_page_body({"content-length": "9"}, Body.read, Body(small), 10.0) == small


def test_the_head_of_an_answer() -> None:
    reply = ApiReply(200, "image/jpeg", b"x", [("ETag", '"e"')])
    assert head_of(reply) == [("content-type", "image/jpeg"),
                              ("x-content-type-options", "nosniff"), identity.SERVED_BY,
                              ("ETag", '"e"')]
