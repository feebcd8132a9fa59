"""YesApi's PHP SDK (`YesApiPHPSDK.php`, and `OkayApiClient.php` of okayapi-demo, the same
request code) run through real php-cli with the curl extension: tests/php/yesapi_sdk.php
does what the SDK does (see its header). The SDK asks for `//?s=…` (`///?s=…` when the host
is written with a trailing slash) with a multipart body, and reads the answer with
json_decode($body, true). docs/clients.md has the table.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.calls import SIGN_ERROR, UNKNOWN_APP, UNKNOWN_APP_KEY, USER
from tests.clients.wire import sorted_values_sign
from tests.server_fixture import RunningServer

SDK = Path(__file__).parent.parent / "php" / "yesapi_sdk.php"


def run_sdk(host: str, app_key: str, secret: str,
            calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One php process making `calls` in turn; what the SDK's caller got from each."""
    php = shutil.which("php")
    if php is None:
        pytest.skip("php-cli is not installed (CI installs php-cli php-curl)")
    done = subprocess.run([php, str(SDK), host, app_key, secret, json.dumps(calls)],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode == 3:  # the script's own check: no curl extension
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(calls), done.stdout
    for result in results:  # json_decode gave NULL: say what the body was
        assert result["rs"] is not None or result["status"] == 200, \
            (result["status"], base64.b64decode(result["body"])[:200])
    return results


def test_sdk_calls_answer_through_the_double_slash(server: RunningServer,
                                                   signed_app: dict[str, Any]) -> None:
    key, secret = signed_app["app_key"], signed_app["app_secret"]
    calls = [
        {"service": USER, "params": {"qq": "10001", "size": 640, "output": 0}},  # ints, as PHP code writes them
        {"service": "App.QQ.GroupImage", "params": {"group": "20005", "output": "0"}},
        # non-ASCII text, and a stale `sign` the SDK drops before signing
        {"service": USER, "params": {"qq": "10002", "output": "0", "note": "中文 a+b&c=d",
                                     "sign": "stale"}},
    ]
    results = run_sdk(server.url, key, secret, calls)
    for result in results:
        assert result["head"].startswith("POST //?s="), result["head"]
        assert "Content-Type: multipart/form-data; boundary=" in result["head"]
        rs = result["rs"]
        assert (rs["ret"], rs["data"]["err_code"], rs["msg"]) == (200, 0, "")
        assert result["auth_ok"] is result["auth_ok_objects"] is True
    user = results[0]["rs"]["data"]["img"]
    query = {"s": USER, "app_key": key, "qq": "10001", "size": "640"}
    image = server.client.get("/", params={**query, "sign": sorted_values_sign(query, secret)})
    assert base64.b64decode(user) == image.content


def test_okayapi_host_with_a_trailing_slash(server: RunningServer,
                                            signed_app: dict[str, Any]) -> None:
    """okayapi-demo's default host ends in `/`: the URL becomes `///?s=…`."""
    [result] = run_sdk(server.url + "/", signed_app["app_key"], signed_app["app_secret"],
                       [{"service": USER, "params": {"qq": "10003", "output": "0"}}])
    assert result["head"].startswith("POST ///?s=App.QQ.UserImage HTTP/1.1"), result["head"]
    assert (result["rs"]["ret"], result["rs"]["data"]["err_code"], result["auth_ok"]) == (200, 0, True)


def test_double_slash_answers_the_bytes_of_the_single_slash(server: RunningServer,
                                                            signed_app: dict[str, Any]) -> None:
    """With `output` left at its default the body is the image, which json_decode turns into
    NULL (as on YesApi: the SDK is for JSON, `output=0`): the bytes are those of `/?s=…`."""
    key, secret = signed_app["app_key"], signed_app["app_secret"]
    [result] = run_sdk(server.url, key, secret, [{"service": USER, "params": {"qq": "10004"}}])
    assert result["status"] == 200 and result["rs"] is None
    fields = {"qq": "10004", "s": USER, "app_key": key}
    fields["sign"] = sorted_values_sign(fields, secret)
    single = server.client.post("/", params={"s": USER},
                                files={name: (None, value) for name, value in fields.items()})
    assert single.headers["content-type"].startswith("image/")
    assert base64.b64decode(result["body"]) == single.content


def test_refusals_reach_the_sdk_as_arrays(server: RunningServer,
                                          signed_app: dict[str, Any]) -> None:
    """A wrong secret and a key the server never issued: json_decode gives the caller the
    envelope with `ret` and the message, over the same `//?s=…` request."""
    call = [{"service": USER, "params": {"qq": "10005", "output": "0"}}]
    [bad_sign] = run_sdk(server.url, signed_app["app_key"], "x" * 64, call)
    assert (bad_sign["rs"]["ret"], bad_sign["rs"]["msg"], bad_sign["rs"]["data"]) == (409, SIGN_ERROR, [])
    [unknown] = run_sdk(server.url, UNKNOWN_APP_KEY, "x" * 64, call)
    assert (unknown["rs"]["ret"], unknown["rs"]["msg"]) == (406, UNKNOWN_APP)
    assert "_auth" not in unknown["rs"]  # the server cannot sign for an app it does not know


def test_error_envelopes_verify_only_as_objects(server: RunningServer,
                                                signed_app: dict[str, Any]) -> None:
    """A refused call of a known app carries `_auth` over `"data":{}` (PhalApi writes an
    empty `data` as an object). json_decode($body, true) makes that `[]`, which json_encode
    writes as `[]`: the array idiom cannot verify it; decoding as objects can."""
    [refused] = run_sdk(server.url, signed_app["app_key"], signed_app["app_secret"],
                        [{"service": USER, "params": {"qq": "abc", "output": "0"}}])
    assert (refused["rs"]["ret"], refused["rs"]["data"]) == (400, [])
    assert b'"data":{}' in base64.b64decode(refused["body"])
    assert (refused["auth_ok"], refused["auth_ok_objects"]) == (False, True)


def test_a_php_without_curl_is_named_not_mistaken(tmp_path: Path) -> None:
    """`php -n` loads no extension: the script stops with its own exit code, which
    run_sdk turns into a skip (a failure under QQAVATAR_STRICT=1), never a wrong answer."""
    php = shutil.which("php")
    if php is None:
        pytest.skip("php-cli is not installed (CI installs php-cli php-curl)")
    done = subprocess.run([php, "-n", str(SDK), "http://127.0.0.1:9", "K", "S", "[]"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (3, "")
    assert "php-curl" in done.stderr
