"""One server per client module (tests/conftest.py `server`), with an app that must sign."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server_fixture import RunningServer

USER = "App.QQ.UserImage"
# A well-formed app_key no server has issued: what a client configured with a stale key sends.
UNKNOWN_APP_KEY = "0123456789ABCDEF0123456789ABCDEF"
SIGN_ERROR = "客户端非法请求：签名错误"
UNKNOWN_APP = "客户端非法请求：非法app_key，请核对你所在的接口域名"


@pytest.fixture(scope="module")
def signed_app(server: RunningServer) -> dict[str, Any]:
    record = server.create_app("client", sign_required=True)
    server.wait_for_app(record["app_key"])
    return record
