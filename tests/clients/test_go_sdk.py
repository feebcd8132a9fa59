"""YesApi's Go SDK (`yesapi-go-sdk`, `YesApiCilent/YesApiCilent_V2.go`), its wire format
reproduced byte for byte: DoRequest builds `HOST + "?sign=" + SIGN` and appends `&k=v` for
every parameter in Go's map order (random on each call), values not URL-encoded, and
http.Get sends it. With no path after the host Go's request line carries `/`; the answer
is unmarshalled into {ret int64, msg string, data any}, its error ignored: a body that is
not JSON leaves the caller ret 0 and no message.

The raw request line is where the two HTTP servers differ, so this module runs on both.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.clients.calls import SIGN_ERROR, UNKNOWN_APP, UNKNOWN_APP_KEY, USER
from tests.clients.wire import Answer, exchange, host_port, sorted_values_sign
from tests.server_fixture import RunningServer

# uvicorn's HTTP parser refuses the request line before the application sees it
UVICORN_REFUSAL = (400, b"Invalid HTTP request received.")


@pytest.fixture(scope="module", params=["granian", "uvicorn"])
def http_server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server(http_server: str, tmp_path_factory: pytest.TempPathFactory,
           fake_qlogo: Any) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("server"), fake_qlogo.url,
                            args=("--server", http_server))
    yield running
    running.stop()


def go_request(base_url: str, app_key: str, secret: str, params: dict[str, str], *,
               absolute: bool = False) -> Answer:
    """DoRequest with `params` iterated in the order given (Go's map order is random).
    `absolute`: the request line a Go client sends through an HTTP proxy, with the URL as
    written (nothing between the host and `?`)."""
    params = {**params, "app_key": app_key}
    query = "?sign=" + sorted_values_sign(params, secret)  # sort.Strings: byte order
    query += "".join(f"&{name}={value}" for name, value in params.items())
    host, port = host_port(base_url)
    target = f"http://{host}:{port}{query}" if absolute else "/" + query
    head = (f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n")
    return exchange(base_url, head.encode())


def unmarshal(answer: Answer) -> dict[str, Any]:
    """encoding/json into APIResponse: `ret` must be an integer (int64 refuses 200.0),
    `msg` a string."""
    def no_floats(text: str) -> float:
        raise AssertionError(f"a float in the answer: {text}")
    rs: dict[str, Any] = json.loads(answer.body, parse_float=no_floats)
    assert isinstance(rs["ret"], int) and -2**63 <= rs["ret"] < 2**63
    assert isinstance(rs["msg"], str)
    return rs


def test_every_parameter_order_answers(server: RunningServer, signed_app: dict[str, Any]) -> None:
    params = {"s": USER, "qq": "10001", "output": "0", "size": "140"}
    for order in itertools.permutations(params):
        answer = go_request(server.url, signed_app["app_key"], signed_app["app_secret"],
                            {name: params[name] for name in order})
        assert answer.status == 200
        rs = unmarshal(answer)
        assert (rs["ret"], rs["data"]["err_code"]) == (200, 0), (order, rs)


def test_raw_utf8_in_the_request_line(server: RunningServer, signed_app: dict[str, Any],
                                      http_server: str) -> None:
    """A value Go writes as is: UTF-8 bytes in the query, signed as those bytes. granian
    passes them on; uvicorn's parser (httptools; h11 as well) refuses a request target with
    bytes above 0x7f, in plain text, and the Go caller is left with ret 0."""
    answer = go_request(server.url, signed_app["app_key"], signed_app["app_secret"],
                        {"s": "App.QQ.GroupImage", "group": "20005", "output": "0", "note": "中文"})
    if http_server == "uvicorn":
        assert (answer.status, answer.body) == UVICORN_REFUSAL
    else:
        assert unmarshal(answer)["ret"] == 200


def test_nothing_between_host_and_query(server: RunningServer, signed_app: dict[str, Any],
                                        http_server: str) -> None:
    """The URL as DoRequest writes it (`http://host:port?sign=…`) in absolute form, as Go
    sends it to a proxy; a proxy passes it on with `/`, a server reached directly must read
    it. granian does; uvicorn's httptools refuses it."""
    answer = go_request(server.url, signed_app["app_key"], signed_app["app_secret"],
                        {"s": USER, "qq": "10002", "output": "0"}, absolute=True)
    if http_server == "uvicorn":
        assert (answer.status, answer.body) == UVICORN_REFUSAL
    else:
        assert (answer.status, unmarshal(answer)["ret"]) == (200, 200)


def test_unencoded_plus_is_a_space_and_refused(server: RunningServer,
                                               signed_app: dict[str, Any]) -> None:
    """An unencoded `+` is a space in a query string (PHP reads it so too): the value the
    server signs is not the client's, and the Go caller reads ret 409."""
    answer = go_request(server.url, signed_app["app_key"], signed_app["app_secret"],
                        {"s": USER, "qq": "10003", "output": "0", "note": "a+b"})
    rs = unmarshal(answer)
    assert (rs["ret"], rs["msg"], rs["data"]) == (409, SIGN_ERROR, {})


def test_refusals_unmarshal(server: RunningServer, signed_app: dict[str, Any]) -> None:
    params = {"s": USER, "qq": "10004", "output": "0"}
    bad = unmarshal(go_request(server.url, signed_app["app_key"], "x" * 64, params))
    assert (bad["ret"], bad["msg"]) == (409, SIGN_ERROR)
    unknown = unmarshal(go_request(server.url, UNKNOWN_APP_KEY, "x" * 64, params))
    assert (unknown["ret"], unknown["msg"], unknown["data"]) == (406, UNKNOWN_APP, {})
