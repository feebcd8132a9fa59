"""Bodies sent to the pages (everything but the API: /admin, /docs, /metrics …), read at the
edge before any page sees them.

A page needs little: the dashboard's largest form (an app's settings) is a few hundred
bytes. So a page body is at most `MAX_PAGE_BODY_BYTES` (refused from its Content-Length
before a byte of it is read), at most `MAX_PAGE_FIELDS` fields, carries no file, and must
arrive within the client timeout, as an API body must. The page then reads the body from
memory (`replaying`), never from the client.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope

from ..apicall import ApiReply
from ..protocol import errors
from .request import CLOSE, UnreadBody, body_too_large, declared_length, media_type, read_body

MAX_PAGE_BODY_BYTES = 16 * 1024
MAX_PAGE_FIELDS = 64
_FILE_PART = re.compile(rb"content-disposition:[^\r\n]*filename", re.IGNORECASE)


async def read_page_body(scope: Scope, receive: Receive, timeout: float) -> bytes:
    """The whole body of a page request, within the bounds above; ApiError otherwise."""
    length = declared_length(scope)
    if length is not None and length > MAX_PAGE_BODY_BYTES:
        raise body_too_large(MAX_PAGE_BODY_BYTES)
    body = await read_body(receive, timeout, MAX_PAGE_BODY_BYTES)
    if media_type(Headers(scope=scope).get("content-type", "")) == "multipart/form-data":
        if _FILE_PART.search(body):
            raise errors.client_error(400, "页面不接受文件")
        fields = body.lower().count(b"content-disposition:")
    else:
        fields = body.count(b"&") + 1 if body else 0
    if fields > MAX_PAGE_FIELDS:
        raise errors.client_error(400, f"表单字段不能超过{MAX_PAGE_FIELDS}个")
    return body


def page_refusal(error: errors.ApiError) -> ApiReply:
    """The plain-text answer to a page body refused; it closes the connection when part of
    the body was left unread."""
    if isinstance(error, UnreadBody):
        status, headers = error.status, [CLOSE]
    else:
        status, headers = 400, []
    return ApiReply(status, "text/plain; charset=utf-8", error.msg.encode("utf-8"), headers)


def replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for a page: the body already read, then the client's own messages (its
    disconnect, which a streaming answer listens for)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
