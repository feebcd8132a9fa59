"""YesApi's Python clients, their wire format reproduced byte for byte: the PyPI package
`yesapi` (`YesApi.http_get`) and `yesapi-python-sdk`'s `yesapi_sdk_another.py` (`yes()`).
Both add `app_key` to the caller's dict, sign the values in `sorted()` order (every value
must already be a string: they are joined with ''.join) and call
`requests.get(api_url, params)`: a GET whose query is urlencode(params) in the dict's order
(quote_plus: a space is `+`), with `/` as the path when the URL has none; the caller reads
`.json()` or `.content`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.clients.calls import SIGN_ERROR, UNKNOWN_APP, UNKNOWN_APP_KEY, USER
from tests.clients.wire import (
    Answer,
    auth_holds,
    exchange,
    host_port,
    sorted_values_sign,
)
from tests.server_fixture import RunningServer


def requests_get(base_url: str, api_url: str, app_key: str, secret: str,
                 params: dict[str, str]) -> Answer:
    """The SDKs' call: sign, then requests.get as it goes out (its default headers)."""
    params = {**params, "app_key": app_key}
    params["sign"] = sorted_values_sign(params, secret)
    path = api_url.split("//", 1)[1].partition("/")[2]
    host, port = host_port(base_url)
    head = (f"GET /{path}?{urlencode(params)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "User-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\n"
            "Accept: */*\r\nConnection: keep-alive\r\n\r\n")
    return exchange(base_url, head.encode())


# PyPI's README writes the URL without a path; yesapi_sdk_another.py with a trailing slash.
API_URLS = pytest.mark.parametrize("trailing", ["", "/"], ids=["pypi-yesapi", "sdk-another"])


@API_URLS
def test_json_call_answers_and_verifies(server: RunningServer, signed_app: dict[str, Any],
                                        trailing: str) -> None:
    secret = signed_app["app_secret"]
    answer = requests_get(server.url, server.url + trailing, signed_app["app_key"], secret,
                          {"s": USER, "qq": "10001", "output": "0", "note": "中文 a+b&c=d/~*"})
    rs = answer.json()
    assert (answer.status, rs["ret"], rs["data"]["err_code"]) == (200, 200, 0), rs
    assert auth_holds(answer.body, secret)


@API_URLS
def test_image_call_gives_the_image(server: RunningServer, signed_app: dict[str, Any],
                                    trailing: str) -> None:
    """PyPI's README example writes `rsp.content` to a file: the image's bytes."""
    key, secret = signed_app["app_key"], signed_app["app_secret"]
    answer = requests_get(server.url, server.url + trailing, key, secret,
                          {"s": "App.QQ.GroupImage", "group": "20005"})
    query = {"s": "App.QQ.GroupImage", "group": "20005", "app_key": key}
    direct = server.client.get("/", params={**query, "sign": sorted_values_sign(query, secret)})
    assert answer.headers["content-type"].startswith("image/")
    assert (answer.status, answer.body) == (200, direct.content)


def test_refusals_read_with_json(server: RunningServer, signed_app: dict[str, Any]) -> None:
    params = {"s": USER, "qq": "10002", "output": "0"}
    bad = requests_get(server.url, server.url, signed_app["app_key"], "x" * 64, params).json()
    assert (bad["ret"], bad["msg"], bad["data"]) == (409, SIGN_ERROR, {})
    unknown = requests_get(server.url, server.url, UNKNOWN_APP_KEY, "x" * 64, params).json()
    assert (unknown["ret"], unknown["msg"]) == (406, UNKNOWN_APP)
