"""The common public pattern: Flask + `requests` + `flask-caching`, under gunicorn.

What a typical self-written avatar proxy looks like: look the app up, check a sign
when one is sent, ask the cache, else fetch from qlogo with `requests`, keep the
answer with flask-caching (SimpleCache: in-process, values pickled), and answer the
image or YesApi's JSON envelope with `_auth`. Same URLs and parameters as qqavatar.

    gunicorn --workers 1 --threads 8 bench.refs.flask_app:app
    (BENCH_UPSTREAM_USER_URL: qlogo URL template; BENCH_APPS_FILE: a JSON file
    {app_key: app_secret}, read on first use: the harness writes it while this starts)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from typing import Any

import requests
from flask import Flask, Response, request
from flask_caching import Cache

UPSTREAM = os.environ.get("BENCH_UPSTREAM_USER_URL", "https://q1.qlogo.cn/g?b=qq&nk={qq}&s={size}")
APPS_FILE = os.environ.get("BENCH_APPS_FILE", "")
_apps: dict[str, str] = {}

app = Flask(__name__)
cache = Cache(app, config={"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400,
                           "CACHE_THRESHOLD": 100_000})
_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per worker thread (a Session is not meant to be shared).
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _secret(app_key: str) -> str | None:
    if not _apps and os.path.exists(APPS_FILE):
        with open(APPS_FILE, encoding="utf-8") as file:
            _apps.update(json.load(file))
    return _apps.get(app_key)


def _php_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace(
        "/", "\\/").encode()


def _envelope(ret: int, data: Any, msg: str, secret: str | None) -> Response:
    t = int(time.time())
    data_json = _php_json(data)
    body = b'{"ret":%d,"data":%s,"msg":%s,"_t":%d' % (ret, data_json, _php_json(msg), t)
    if secret is not None:
        auth = hashlib.md5(data_json + str(t).encode() + secret.encode()).hexdigest()
        body += b',"_auth":"%s"' % auth.encode()
    return Response(body + b"}", content_type="application/json;charset=utf-8")


def _sign(params: dict[str, str], secret: str) -> str:
    text = "".join(params[name] for name in sorted(params) if name != "sign") + secret
    return hashlib.md5(text.encode()).hexdigest().upper()


def _fetch(qq: str, size: int) -> dict[str, Any]:
    reply = _session().get(UPSTREAM.format(qq=qq, size=size), timeout=5)
    reply.raise_for_status()
    return {"body": reply.content, "content_type": reply.headers.get("content-type", ""),
            "is_default": reply.headers.get("x-info", "").startswith("notexist")}


@app.route("/", methods=["GET", "POST"])
def api() -> Response:
    params = request.values.to_dict()
    service = (params.get("service") or params.get("s") or "").lower()
    if service not in ("app.qq.userimage", "qq.userimage"):
        return _envelope(404, {}, "非法请求：接口服务不存在", None)
    secret = _secret(params.get("app_key", ""))
    if secret is None:
        return _envelope(406, {}, "客户端非法请求：app_key不存在", None)
    if "sign" in params and params["sign"].upper() != _sign(params, secret):
        return _envelope(409, {}, "客户端非法请求：签名错误", secret)
    qq, size = params.get("qq", ""), int(params.get("size", "100"))
    if not qq.isdigit() or size not in (40, 100, 140, 640):
        return _envelope(400, {}, "客户端非法请求：参数错误", secret)
    key = f"user:{qq}:{size}"
    avatar = cache.get(key)
    if avatar is None:
        try:
            avatar = _fetch(qq, size)
        except requests.RequestException:
            return _envelope(200, {"err_code": -1, "err_msg": "上游不可用", "img": ""}, "", secret)
        cache.set(key, avatar)
    if params.get("output", "1") not in ("0", "false"):
        etag = '"' + hashlib.md5(avatar["body"]).hexdigest() + '"'
        return Response(avatar["body"], content_type=avatar["content_type"],
                        headers={"ETag": etag, "Cache-Control": "public, max-age=86400"})
    data = {"err_code": 0, "err_msg": "", "img": base64.b64encode(avatar["body"]).decode(),
            "is_default": avatar["is_default"], "content_type": avatar["content_type"]}
    return _envelope(200, data, "", secret)
