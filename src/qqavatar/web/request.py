"""HTTP → one flat dict of parameters: query string, then the body on top (body wins).

A POST body is read as PhalApi reads it: a JSON object counts whatever the Content-Type
(`protocol.jsonbody`); otherwise an urlencoded form (or a body with no Content-Type), or
multipart (fields only). Other bodies, and bodies of other methods, are not read.

Bounds, the same on both servers (`web/dispatch.py` applies them): at most `MAX_PARAMS`
parameters; a body over `MAX_BODY_BYTES` is refused from its Content-Length before a byte
of it is read or, sent chunked, as soon as it grows past the cap; a body not complete within
the client timeout is refused too, so a client dribbling one cannot hold a connection and
its buffer, and so is one that takes more than `MAX_BODY_READS` reads (granian hands a
chunked body over one wire chunk per await: 100 000 one-byte chunks cost seconds of a
worker's time). These are ret 400 envelopes: ret 413 is the quota's answer, and the SDK
reads it as such. Those refusals leave part of the body unsent or unread (`UnreadBody`):
their answer closes the connection, so a client does not reuse it while the server is
shutting it.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Message, Receive

from ..protocol import errors
from ..protocol.jsonbody import php_json_params

MAX_BODY_BYTES = 1024 * 1024
MAX_PARAMS = 256
MAX_BODY_READS = 4096
DEFAULT_BODY_TIMEOUT = 10.0  # seconds; the server passes QQAVATAR_CLIENT_TIMEOUT


class UnreadBody(errors.ApiError):
    """A body refused before its end (ret 400): the connection cannot carry another request.
    `status` is the HTTP status a page answers it with (the API answers an envelope)."""

    def __init__(self, text: str, status: int = 400) -> None:
        super().__init__(400, errors.CLIENT_PREFIX + text)
        self.status = status


def body_too_large(limit: int = MAX_BODY_BYTES) -> UnreadBody:
    return UnreadBody(f"请求体不能超过{limit}字节", 413)


def too_slow(timeout: float) -> UnreadBody:
    return UnreadBody(f"请求体未在{timeout:g}秒内发送完毕", 408)


def parse_query(raw: bytes | str) -> dict[str, str]:
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if "%" not in text and "+" not in text:
        # Nothing to unquote (the common case): parse_qsl's rules without its cost.
        if text.count("&") >= MAX_PARAMS:
            raise errors.client_error(400, f"参数不能超过{MAX_PARAMS}个")
        params: dict[str, str] = {}
        for field in text.split("&"):
            if field:
                name, _, value = field.partition("=")
                params[name] = value
        return params
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace",
                          max_num_fields=MAX_PARAMS)
    except ValueError:
        raise errors.client_error(400, f"参数不能超过{MAX_PARAMS}个") from None
    return dict(pairs)  # a repeated name keeps its last value, as PHP does


async def read_body(receive: Receive, timeout: float = DEFAULT_BODY_TIMEOUT,
                    limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, within `timeout` seconds, `limit` bytes and `MAX_BODY_READS` reads;
    UnreadBody otherwise."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise body_too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
                if len(chunks) >= MAX_BODY_READS:
                    raise UnreadBody(f"请求体不能超过{MAX_BODY_READS}个分块")
    except TimeoutError:
        raise too_slow(timeout) from None
    return b"".join(chunks)


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


async def _parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    header = (b"content-type", content_type.encode("latin-1", "replace"))
    scope = {"type": "http", "headers": [header]}
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, replay).form(max_files=16, max_fields=MAX_PARAMS)
    except Exception:  # noqa: BLE001 - starlette raises assorted errors for malformed bodies
        raise errors.client_error(400, "multipart请求体格式不正确") from None
    try:
        return {name: value for name, value in form.items() if isinstance(value, str)}
    finally:
        await form.close()


async def add_body(params: dict[str, str], content_type: str, body: bytes) -> dict[str, str]:
    """`params` with the body's parameters on top."""
    if not body or body == b"0":  # PHP's empty(): "0" is no body either
        return params
    kind = media_type(content_type)
    if kind == "multipart/form-data":  # PHP has no php://input for it: never JSON
        params.update(await _parse_multipart(content_type, body))
    elif (decoded := php_json_params(body)) is not None:
        if len(decoded) > MAX_PARAMS:
            raise errors.client_error(400, f"参数不能超过{MAX_PARAMS}个")
        for name, value in decoded.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
    elif kind in ("application/x-www-form-urlencoded", ""):
        params.update(parse_query(body))
    if len(params) > MAX_PARAMS:
        raise errors.client_error(400, f"参数不能超过{MAX_PARAMS}个")
    return params
