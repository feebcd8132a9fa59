"""The gateway's order, as PhalApi checks a request: service lookup (404) → parameter rules,
the common ones then the service's (400) → the app (406) → the signature (400 missing, 409
wrong) → guards → handler → observers. Each test breaks two steps at once and asserts that
the earlier one answers. No server: a Gateway on a runtime with an in-memory app table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import pytest

from qqavatar.apicall import ApiReply, ApiRequest, Call, Outcome
from qqavatar.avatars import AvatarService
from qqavatar.components import Runtime
from qqavatar.gateway import Gateway
from qqavatar.protocol import errors
from qqavatar.protocol.sign import compute_sign
from qqavatar.settings import Settings

pytestmark = pytest.mark.anyio

KEY = "A" * 32
SECRET = "s3cret-of-the-test-app"
GUARD_REFUSAL = errors.client_error(402, "the test guard refused")


@dataclass(frozen=True)
class App:
    app_key: str
    app_secret: str
    sign_required: bool
    sign_scheme: str = "yesapi"


class Apps:
    def __init__(self, *apps: App) -> None:
        self.by_key = {app.app_key: app for app in apps}

    def get(self, app_key: str) -> App | None:
        return self.by_key.get(app_key)


class RecordingGuard:
    """Sees every call; refuses those of an app, so a test knows one got past the signature."""

    replay = None

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> None:
        self.calls.append(call)
        if call.app is not None:
            raise GUARD_REFUSAL

    def replayable(self, call: Call) -> bool:
        return False


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_gateway(*, sign_required: bool = False) -> tuple[Gateway, RecordingGuard, list[Outcome]]:
    runtime = Runtime(settings=Settings(), apps=Apps(App(KEY, SECRET, sign_required)),
                      avatars=cast(AvatarService, None))  # no call here reaches an avatar
    guard = RecordingGuard()
    outcomes: list[Outcome] = []
    return Gateway(runtime, guards=[guard], observers=[outcomes.append],
                   clock=lambda: 1_700_000_000.0), guard, outcomes


async def answer(gateway: Gateway, service: str, **params: str) -> tuple[int, str]:
    reply: ApiReply = await gateway.handle(ApiRequest(service=service, params=dict(params)))
    body: dict[str, Any] = json.loads(reply.body)
    return body["ret"], body["msg"]


async def test_an_unknown_service_answers_before_its_parameters_and_app() -> None:
    gateway, guard, _ = make_gateway()
    assert await answer(gateway, "App.QQ.Nope", qq="x", app_key="short") == (
        404, "客户端非法请求：接口服务App.QQ.Nope不存在")
    assert guard.calls == []


async def test_common_rules_answer_before_the_services_rules() -> None:
    gateway, _, _ = make_gateway()
    assert await answer(gateway, "App.QQ.UserImage", qq="not-a-number") == (
        400, "客户端非法请求：缺少必要参数app_key")


async def test_the_services_rules_answer_before_an_unknown_app() -> None:
    gateway, _, _ = make_gateway()
    unknown = "B" * 32
    assert await answer(gateway, "App.QQ.UserImage", app_key=unknown, qq="12") == (
        400, "客户端非法请求：qq应该是5到12位数字, 但现在qq = 12")
    assert await answer(gateway, "App.QQ.UserImage", app_key=unknown, qq="376741929") == (
        406, "客户端非法请求：非法app_key，请核对你所在的接口域名")


async def test_a_uuid_without_token_answers_before_the_services_rules() -> None:
    gateway, _, _ = make_gateway()
    assert await answer(gateway, "App.QQ.UserImage", app_key=KEY, uuid="U") == (
        400, "客户端非法请求：uuid需要和token一起传递")


async def test_an_unknown_app_answers_before_a_wrong_sign() -> None:
    gateway, _, _ = make_gateway()
    assert await answer(gateway, "App.QQ.UserImage", app_key="B" * 32, qq="376741929",
                        sign="0" * 32) == (406, "客户端非法请求：非法app_key，请核对你所在的接口域名")


async def test_the_sign_is_checked_after_the_rules_and_before_the_guards() -> None:
    gateway, guard, _ = make_gateway(sign_required=True)
    assert await answer(gateway, "App.QQ.UserImage", app_key=KEY, qq="376741929") == (
        400, "客户端非法请求：缺少必要参数sign")
    assert await answer(gateway, "App.QQ.UserImage", app_key=KEY, qq="376741929",
                        sign="0" * 32) == (409, "客户端非法请求：签名错误")
    assert guard.calls == []
    params = {"app_key": KEY, "qq": "376741929"}
    assert await answer(gateway, "App.QQ.UserImage", **params,
                        sign=compute_sign(params, SECRET)) == (GUARD_REFUSAL.ret,
                                                               GUARD_REFUSAL.msg)
    [call] = guard.calls
    assert call.values["qq"] == "376741929" and call.app is not None and call.app.app_key == KEY


async def test_guards_see_parsed_values_and_refuse_before_the_handler() -> None:
    gateway, guard, outcomes = make_gateway()
    assert await answer(gateway, "qq.userimage", app_key=KEY, qq="376741929", size="40") == (
        GUARD_REFUSAL.ret, GUARD_REFUSAL.msg)
    [call] = guard.calls
    assert call.service.name == "App.QQ.UserImage"  # resolved case-insensitively, App implied
    assert call.values["size"] == 40 and call.values["output"] is True
    assert [(o.service, o.app_key, o.ret) for o in outcomes] == [
        ("App.QQ.UserImage", KEY, GUARD_REFUSAL.ret)]


async def test_a_service_without_app_passes_the_guards_to_its_handler() -> None:
    gateway, guard, outcomes = make_gateway()
    reply = await gateway.handle(ApiRequest(service="", params={}))
    body = json.loads(reply.body)
    assert body["ret"] == 200 and body["data"]["name"] == "qqavatar"
    assert "App.QQ.UserImage" in body["data"]["services"]
    assert [o.service for o in outcomes] == ["App.Site.Index"]
    assert len(guard.calls) == 1 and guard.calls[0].app is None
