"""HTTP → one flat dict of parameters: query string, then the body on top (body wins).

Bodies may be urlencoded, multipart (fields only) or a JSON object. Values are
text as PHP would see them: JSON scalars become PHP's string casts.

Bounds, the same on both servers: at most `MAX_PARAMS` parameters; a body over
`MAX_BODY_BYTES` is refused from its Content-Length before a byte of it is read (or, sent
chunked, as soon as it grows past the cap); a body not complete within the client timeout
is refused too, so a client dribbling one cannot hold a connection and its buffer. These
are ret 400 envelopes: ret 413 is the quota's answer, and the SDK reads it as such. Those two
refusals leave part of the body unsent or unread (`UnreadBody`): their answer closes the
connection, so a client does not reuse it while the server is shutting it.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Message, Receive, Scope

from ..protocol import errors

MAX_BODY_BYTES = 1024 * 1024
MAX_PARAMS = 256
DEFAULT_BODY_TIMEOUT = 10.0  # seconds; the server passes QQAVATAR_CLIENT_TIMEOUT


class UnreadBody(errors.ApiError):
    """A body refused before its end (ret 400): the connection cannot carry another request."""

    def __init__(self, text: str) -> None:
        super().__init__(400, errors.CLIENT_PREFIX + text)


def body_too_large() -> UnreadBody:
    return UnreadBody(f"请求体不能超过{MAX_BODY_BYTES}字节")


CLOSE = ("connection", "close")


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


async def read_body(receive: Receive, timeout: float = DEFAULT_BODY_TIMEOUT) -> bytes:
    """The whole body, within `timeout` seconds and `MAX_BODY_BYTES`; ApiError otherwise."""
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
                if size > MAX_BODY_BYTES:
                    raise body_too_large()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise UnreadBody(f"请求体未在{timeout:g}秒内发送完毕") from None
    return b"".join(chunks)


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; None if absent or not one."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _php_text(name: str, value: object) -> str:
    """PHP's (string) cast of a decoded JSON scalar."""
    if isinstance(value, str):
        return value
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    raise errors.client_error(400, f"参数{errors.echo(name)}不能是数组或对象")


def _parse_json(body: bytes) -> dict[str, str]:
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        raise errors.client_error(400, "请求体不是合法的JSON") from None
    if not isinstance(decoded, dict):
        raise errors.client_error(400, "JSON请求体必须是一个对象")
    if len(decoded) > MAX_PARAMS:
        raise errors.client_error(400, f"参数不能超过{MAX_PARAMS}个")
    return {str(name): _php_text(name, value) for name, value in decoded.items()}


async def _parse_multipart(scope: Scope, body: bytes) -> dict[str, str]:
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


async def read_params(scope: Scope, receive: Receive, *,
                      timeout: float = DEFAULT_BODY_TIMEOUT) -> dict[str, str]:
    params = parse_query(scope.get("query_string", b""))
    if scope["method"] != "POST":
        return params
    length = declared_length(scope)
    if length is not None and length > MAX_BODY_BYTES:
        raise body_too_large()  # before reading: the server closes the connection after
    body = await read_body(receive, timeout)
    if not body:
        return params
    media_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        params.update(_parse_json(body))
    elif media_type == "multipart/form-data":
        params.update(await _parse_multipart(scope, body))
    elif media_type in ("application/x-www-form-urlencoded", ""):
        params.update(parse_query(body))
    if len(params) > MAX_PARAMS:
        raise errors.client_error(400, f"参数不能超过{MAX_PARAMS}个")
    return params
