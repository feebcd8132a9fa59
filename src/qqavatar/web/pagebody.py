"""Bodies sent to the pages (everything but the API: /admin, /docs, /metrics …), read at the
edge before any page sees them.

A page needs little: the dashboard's largest form (an app's settings) is a few hundred
bytes. So a page body is at most `MAX_PAGE_BODY_BYTES` (refused from its Content-Length
before a byte of it is read), at most `MAX_PAGE_FIELDS` fields, carries no file, and must
arrive within the client timeout, as an API body must. The page then reads the body from
memory (`replaying`), never from the client. `web/dispatch.py` reads the body.
"""

from __future__ import annotations

import re

from starlette.types import Message, Receive

from ..protocol import errors
from .request import media_type

MAX_PAGE_BODY_BYTES = 16 * 1024
MAX_PAGE_FIELDS = 64
_FILE_PART = re.compile(rb"content-disposition:[^\r\n]*filename", re.IGNORECASE)


def check_page_form(body: bytes, content_type: str) -> None:
    """ApiError unless `body` (read within `MAX_PAGE_BODY_BYTES`) is a form a page may take."""
    if media_type(content_type) == "multipart/form-data":
        if _FILE_PART.search(body):
            raise errors.client_error(400, "页面不接受文件")
        fields = body.lower().count(b"content-disposition:")
    else:
        fields = body.count(b"&") + 1 if body else 0
    if fields > MAX_PAGE_FIELDS:
        raise errors.client_error(400, f"表单字段不能超过{MAX_PAGE_FIELDS}个")


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
