"""Logs: JSON lines for machines, plain lines for people, a request id on every record.

- `REQUEST_ID` holds the id of the request being served (a contextvar: each request runs in
  its own task); formatters add it to every record logged while that request runs.
- `RedactFilter` takes secrets out of messages before any handler writes them: values of
  `app_secret`, `token`, `password`, `sign` …, passwords in URLs, and app keys (32 upper-case
  hex, cut to their first 6 characters). Logs are for operators, not for credentials. Names
  are matched after percent-decoding (`%73ign=` is `sign=` to the server, so to us too).
- Client text (paths, service names, queries) can hold CR/LF and other control characters:
  the filter writes them as `\\xNN`, so one record is one line and no client can forge
  another; in the text format a traceback's lines are indented under their record.
- `uvicorn_log_config` gives uvicorn (and its worker processes) the same handler, so its
  own lines come out in the same format.
- Access logging is off unless asked for; then `log_access` writes one record per request.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import sys
import time
from contextvars import ContextVar
from typing import IO, Any, Literal
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import identity

LogFormat = Literal["json", "text"]

REQUEST_ID: ContextVar[str | None] = ContextVar("qqavatar_request_id", default=None)

# An incoming X-Request-Id is kept when it is short and plain (it goes into logs and back
# into a header); anything else is replaced by our own.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@+=-]{1,128}")


class _IdSource:
    """Our ids: a random per-process prefix and a counter. Unique across workers and
    restarts, and cheaper than a uuid4 per request. Forked workers draw a new prefix."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = secrets.token_hex(4)
        self.counter = itertools.count(1)


_ids = _IdSource()
os.register_at_fork(after_in_child=_ids.reseed)


def new_request_id() -> str:
    return f"{_ids.prefix}-{next(_ids.counter):x}"


def request_id_for(scope: Scope) -> str:
    """The client's `X-Request-Id` when it is sane, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _SANE_REQUEST_ID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return new_request_id()


def with_request_id(send: Send) -> Send:
    """`send` that adds the current request id (and X-Served-By) to the response headers
    (non-API pages)."""
    request_id = REQUEST_ID.get()
    if request_id is None:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if identity.SERVED_BY_RAW not in headers:  # an envelope page has it already
                headers.append(identity.SERVED_BY_RAW)
            headers.append((b"x-request-id", request_id.encode("ascii")))
            message = {**message, "headers": headers}
        await send(message)

    return sending


# --- redaction ---------------------------------------------------------------------------------

MASK = "****"
_SECRET_VALUE = re.compile(
    r"(?i)\b(app_secret|secret|[a-z_]*token|password|passwd|sign|signature)"
    r"""(["']?\s*[:=]\s*["']?)"""
    r"""([^\s"'&,;)}\]]+)""")
_AUTHORIZATION = re.compile(r"""(?i)\b(authorization["']?\s*[:=]\s*["']?)[^\r\n"',;}]+""")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s/]+@")
_APP_KEY = re.compile(r"\b([0-9A-F]{6})[0-9A-F]{26}\b")


def mask_app_key(app_key: str) -> str:
    """Enough to tell apps apart in a log, not enough to call the API as one."""
    return app_key[:6] + "…" if len(app_key) > 6 else app_key


# Control characters (C0, DEL, C1), line and paragraph separators, and the bidi overrides
# that make a terminal show text in another order than it was written.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029"
                                  "\u202a-\u202e\u2066-\u2069]")
# A %XX escape of a character a parameter name or its `=`/`:` can be made of.
_ENCODED_NAME_CHAR = re.compile(r"%([0-9A-Fa-f]{2})")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=:")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` on one line: every control character written as `\\xNN` / `\\uNNNN`."""
    return _CONTROL.sub(_escaped, text)


def _decode_name_chars(match: re.Match[str]) -> str:
    char = chr(int(match[1], 16))
    return char if char in _NAME_CHARS else match[0]


def redact(text: str) -> str:
    if "%" in text:  # `%73ign=…` is `sign=…` once decoded: mask what the server reads
        text = _ENCODED_NAME_CHAR.sub(_decode_name_chars, text)
    text = _AUTHORIZATION.sub(rf"\1{MASK}", text)
    text = _SECRET_VALUE.sub(rf"\1\2{MASK}", text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    return _APP_KEY.sub(r"\1…", text)


class RedactFilter(logging.Filter):
    """Redacts the message and any traceback text of every record that passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = escape_controls(redact(message))
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:  # a traceback keeps its lines; nothing else of it may break one
            record.exc_text = _CONTROL_BUT_NEWLINE.sub(_escaped, redact(record.exc_text))
        for name, value in _extras(record).items():  # `path` of the access log …
            if isinstance(value, str):
                setattr(record, name, escape_controls(redact(value)))
        return True


# --- formats -----------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from `extra=` (uvicorn's
# `color_message` is its message again, with terminal colours: not for a JSON line).
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName",
                                                           "color_message"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(_extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2025-01-31 12:00:00,123 INFO  qqavatar.gateway [req 1a2b-3] message`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s%(request)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = REQUEST_ID.get()
        record.__dict__["request"] = f" [req {request_id}]" if request_id else ""
        try:
            first, newline, rest = super().format(record).partition("\n")
        finally:
            del record.__dict__["request"]
        # Only a record's first line starts at the margin: a traceback line that an
        # exception's text put there cannot pass for a record of its own.
        return first + newline + "\n".join("  " + line for line in rest.split("\n")) \
            if newline else first


def resolve_format(setting: str, stream: IO[str] | None = None) -> LogFormat:
    """`auto` → text on a terminal, JSON otherwise (a file, a pipe, journald, a container)."""
    if setting in ("json", "text"):
        return setting  # type: ignore[return-value]
    stream = stream or sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def make_formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


# Chatty at INFO, and httpx would log every upstream URL: warnings only.
_QUIET = ("httpx", "httpcore", "alembic", "asyncio", "multipart")


def uvicorn_log_config(fmt: LogFormat, level: str) -> dict[str, Any]:
    """A `logging.dictConfig` for `uvicorn.run(log_config=…)`; workers apply it too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "qqavatar.logs.RedactFilter"}},
        "formatters": {"qqavatar": {"()": "qqavatar.logs.make_formatter", "fmt": fmt}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "qqavatar", "filters": ["redact"]}},
        "loggers": {
            # uvicorn's loggers send to the root handler: one format for everything.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            **{name: {"level": "WARNING"} for name in _QUIET},
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


def configure(fmt: LogFormat, level: str) -> None:
    """The same configuration without uvicorn (other commands, tests)."""
    import logging.config

    logging.config.dictConfig(uvicorn_log_config(fmt, level))


# --- access log --------------------------------------------------------------------------------

access_logger = logging.getLogger("qqavatar.access")

# Query parameters whose values never reach a log; app_key is cut to its first characters.
_HIDDEN_PARAMS = frozenset({"sign", "token", "app_secret", "secret", "password", "passwd",
                            "admin_token", "signature"})


def safe_query(query: bytes) -> str:
    """The query string with the values of sensitive parameters masked (a name is judged
    as the server reads it, percent-decoded), and no control character left in it."""
    if not query:
        return ""
    parts = []
    for pair in query.decode("latin-1").split("&"):
        name, equals, value = pair.partition("=")
        key = unquote_plus(name, errors="replace").lower()
        if key in _HIDDEN_PARAMS:
            value = MASK
        elif key == "app_key":
            value = mask_app_key(value)
        parts.append(f"{name}{equals}{value}")
    return escape_controls("&".join(parts))


async def log_access(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app` for one HTTP request and log one line about it afterwards."""
    started = time.perf_counter()
    status = 0

    async def sending(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        await send(message)

    try:
        await app(scope, receive, sending)
    finally:
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        query = safe_query(scope.get("query_string", b""))
        # `path` is percent-decoded: it may hold CR/LF; the query is as the client sent it.
        path = escape_controls(redact(scope["path"] + ("?" + query if query else "")))
        client = scope.get("client")
        access_logger.info(
            "%s %s %d %.1fms", scope["method"], path, status, duration_ms,
            extra={"method": scope["method"], "path": path, "status": status,
                   "duration_ms": duration_ms, "client": client[0] if client else None},
        )
