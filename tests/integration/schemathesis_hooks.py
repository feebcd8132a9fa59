"""Schemathesis hooks for test_schemathesis.py (loaded by the CLI through SCHEMATHESIS_HOOKS).

- Calls use the real app (QQAVATAR_ST_APP_KEY), and about half of the GET calls that carry
  a `sign` get the right one, so generated calls reach the handlers instead of stopping at
  406/409.
- JSONP and image answers are checked too: a JSONP body must be `callback(<JSON object>)`,
  an image must decode as the type its Content-Type names.
- Every envelope's `_auth` must hold.
- At the end, every operation must have answered at least one call with ret 200.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from typing import Any

import schemathesis
from PIL import Image

from qqavatar.protocol.sign import compute_sign

APP_KEY = os.environ["QQAVATAR_ST_APP_KEY"]
SECRET = os.environ["QQAVATAR_ST_APP_SECRET"]

_JSONP = re.compile(rb"([A-Za-z_$][A-Za-z0-9_$.]{0,63})\((.*)\)", re.DOTALL)


def _as_sent(value: Any) -> str:
    """A query value as the generated request carries it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Every phase sends through here: put the real app in, and fix half of the signatures."""
    query = case.query
    if isinstance(query, dict) and "app_key" in query:
        query["app_key"] = APP_KEY
        sign = query.get("sign")
        # Only query-only calls are re-signed (what a body sends depends on its encoding);
        # the generated sign decides, so wrong signs (409) stay in the mix.
        if case.method == "GET" and isinstance(sign, str) and len(sign) % 2 == 0:
            sent = {name: _as_sent(value) for name, value in query.items() if value is not None}
            query["sign"] = compute_sign(sent, SECRET)
    body = case.body
    if isinstance(body, dict) and "app_key" in body:
        body["app_key"] = APP_KEY


@schemathesis.deserializer("text/javascript")
def jsonp(ctx: Any, response: Any) -> str:
    match = _JSONP.fullmatch(response.content)
    assert match is not None, f"not a JSONP body: {response.content[:200]!r}"
    assert isinstance(json.loads(match.group(2)), dict), "JSONP of something not an object"
    return str(response.text)


@schemathesis.deserializer("image/*")
def image(ctx: Any, response: Any) -> str:
    media_type = response.headers["content-type"][0].split(";")[0].strip()
    with Image.open(io.BytesIO(response.content)) as decoded:
        assert Image.MIME.get(decoded.format or "") == media_type, (decoded.format, media_type)
        decoded.load()
    return ""  # the document's schema for images is a string; the bytes were checked here


def _envelope(response: Any) -> tuple[bytes, dict[str, Any]] | None:
    """The envelope of a JSON or JSONP answer: its exact bytes, and decoded."""
    content_type = response.headers.get("content-type", [""])[0]
    body = response.content
    if content_type.startswith("text/javascript"):
        match = _JSONP.fullmatch(body)
        body = match.group(2) if match else b""
    elif not content_type.startswith("application/json"):
        return None
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    if not isinstance(decoded, dict) or "_t" not in decoded:
        return None  # return_data=1: the data alone
    return body, decoded


@schemathesis.check
def auth_holds(ctx: Any, response: Any, case: Any) -> bool | None:
    """`_auth` = md5(the exact `data` bytes + _t + secret), whenever it is present."""
    found = _envelope(response)
    if found is None or "_auth" not in found[1]:
        return None
    body, decoded = found
    start = body.index(b',"data":') + len(b',"data":')
    end = body.rindex(b',"msg":')
    expected = hashlib.md5(body[start:end] + str(decoded["_t"]).encode() + SECRET.encode())
    if decoded["_auth"] != expected.hexdigest():
        raise AssertionError(f"_auth does not hold: {body[:300]!r}")
    return True


@schemathesis.check
class EveryOperationSucceeds:
    """Fail if some operation never answered ret 200: the run would prove little about it."""

    def __init__(self) -> None:
        self.tested: set[str] = set()
        self.succeeded: set[str] = set()

    def after_response(self, ctx: Any, response: Any, case: Any) -> None:
        label = case.operation.label
        self.tested.add(label)
        if response.status_code == 200:
            content_type = response.headers.get("content-type", [""])[0]
            found = _envelope(response)
            if content_type.startswith("image/") or (found is not None
                                                     and found[1].get("ret") == 200):
                self.succeeded.add(label)

    def after_run(self, ctx: Any) -> None:
        missing = sorted(self.tested - self.succeeded)
        if missing:
            raise AssertionError(f"operations that never answered ret 200: {missing}")
