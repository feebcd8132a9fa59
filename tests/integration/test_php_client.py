"""A real PHP client (php-cli) signs requests and verifies `_auth` the way YesApi's SDK does."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.server_fixture import RunningServer

CLIENT = Path(__file__).parent.parent / "php" / "client.php"


def run_php(server: RunningServer, app: dict[str, Any], cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    php = shutil.which("php")
    if php is None:
        pytest.skip("php-cli is not installed (CI installs it)")
    done = subprocess.run([php, str(CLIENT), server.url, app["app_key"], app["app_secret"],
                           json.dumps(cases)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def signed(server: RunningServer) -> dict[str, Any]:
    record = server.create_app("php", sign_required=True)
    server.wait_for_app(record["app_key"])
    return record


def test_php_client_signs_and_verifies(server: RunningServer, signed: dict[str, Any],
                                       fake_qlogo: Any) -> None:
    fake_qlogo.fault("error500", numbers=["40000001"])
    avatar = {"qq": "10008", "size": "640", "output": "0"}
    cases = [
        {"path": "/", "sign": True, "params": {"s": "App.QQ.UserImage", **avatar}},
        {"path": "/api/App/QQ/UserImage", "sign": True, "params": avatar},
        {"path": "/", "sign": True, "params": {"s": "App.QQ.GroupImage", "group": "20005", "output": "0"}},
        # Chinese text in a signed value, and numeric-looking names that PHP's ksort orders numerically
        {"path": "/", "sign": True, "params": {"s": "App.QQ.UserImage", **avatar, "note": "中文/测试",
                                               "10": "ten", "9": "nine"}},
        # a business failure: data carries Chinese err_msg, and _auth still holds in PHP
        {"path": "/", "sign": True, "params": {"s": "App.QQ.UserImage", "qq": "40000001", "output": "0"}},
        {"path": "/", "sign": False, "params": {"s": "App.QQ.UserImage", **avatar}},
    ]
    results = run_php(server, signed, cases)
    assert len(results) == len(cases)
    for result in results[:4]:
        assert (result["ret"], result["err_code"], result["auth_ok"]) == (200, 0, True), result
        assert result["img_len"] > 100
    failure = results[4]
    assert (failure["ret"], failure["err_code"], failure["auth_ok"]) == (200, -3, True)
    assert failure["err_msg"] and not failure["err_msg"].isascii()
    assert results[5]["ret"] == 400  # sign required, none sent


def test_php_base64_matches_the_image(server: RunningServer, app: dict[str, Any]) -> None:
    image = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                           "qq": "10009", "size": "640"}).content
    reply = server.client.get("/", params={"s": "App.QQ.UserImage", "app_key": app["app_key"],
                                           "qq": "10009", "size": "640", "output": "0"}).json()
    assert base64.b64decode(reply["data"]["img"]) == image
