"""Log records: redaction, the request id, the two formats, the access log's query."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Generator

import pytest

from qqavatar.logs import (
    REQUEST_ID,
    JsonFormatter,
    RedactFilter,
    TextFormatter,
    escape_controls,
    redact,
    request_id_for,
    resolve_format,
    safe_query,
)

KEY = "0123456789ABCDEF0123456789ABCDEF"


@pytest.fixture
def captured() -> Generator[tuple[logging.Logger, io.StringIO, logging.Handler], None, None]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("qqavatar.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(("text", "clean"), [
    ("app_secret=abcDEF123xyz&qq=1", "app_secret=****&qq=1"),
    ('{"token": "T0KEN", "sign": "ABC"}', '{"token": "****", "sign": "****"}'),
    ("password: hunter2, user=bob", "password: ****, user=bob"),
    ("admin_token=s3cret", "admin_token=****"),
    ("Authorization: Bearer abc.def", "Authorization: ****"),
    ("connect postgresql://qq:pg-pass@db/qq failed", "connect postgresql://qq:****@db/qq failed"),
    (f"app {KEY} unknown", "app 012345… unknown"),
    ("sign_required=True", "sign_required=True"),  # not a sign value
])
def test_redact(text: str, clean: str) -> None:
    assert redact(text) == clean


def test_filter_redacts_arguments_and_tracebacks(
        captured: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    logger, stream, _ = captured
    logger.info("calling with app_key=%s sign=%s", KEY, "C0FFEE")
    try:
        raise RuntimeError("postgresql://u:topsecret@h/db refused, app_secret=abc")
    except RuntimeError:
        logger.exception("database down")
    first, second = lines(stream)
    assert first["message"] == "calling with app_key=012345… sign=****"
    assert "topsecret" not in str(second["exc"]) and "abc" not in str(second["exc"])
    assert "RuntimeError" in str(second["exc"])


def test_records_carry_the_request_id_and_extras(
        captured: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    logger, stream, handler = captured
    logger.info("outside")
    token = REQUEST_ID.set("req-1")
    try:
        logger.warning("inside", extra={"status": 503})
        handler.setFormatter(TextFormatter())
        logger.info("as text")
    finally:
        REQUEST_ID.reset(token)
    outside, inside, text = stream.getvalue().splitlines()
    assert "request_id" not in json.loads(outside)
    record = json.loads(inside)
    assert (record["request_id"], record["status"], record["level"]) == ("req-1", 503, "warning")
    assert record["logger"] == "qqavatar.test_logs" and record["time"].endswith("Z")
    assert text.endswith("INFO  qqavatar.test_logs [req req-1] as text")


def test_incoming_request_ids() -> None:
    def scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
        return {"headers": list(headers)}

    assert request_id_for(scope((b"x-request-id", b"abc-123_x.y:z"))) == "abc-123_x.y:z"
    for bad in (b"", b"a b", b"x" * 129, b"<script>", "é".encode()):
        generated = request_id_for(scope((b"x-request-id", bad)))
        assert generated != bad.decode("utf-8") and len(generated) < 40
    first, second = request_id_for(scope()), request_id_for(scope())
    assert first != second and first.split("-")[0] == second.split("-")[0]


def test_safe_query_masks_sensitive_values() -> None:
    query = f"s=App.QQ.UserImage&app_key={KEY}&qq=10001&sign=ABC&token=T&uuid=U".encode()
    assert safe_query(query) == \
        "s=App.QQ.UserImage&app_key=012345…&qq=10001&sign=****&token=****&uuid=U"
    assert safe_query(b"") == ""


def test_auto_format_follows_the_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format("auto", Tty()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


# --- client text: control characters and percent-encoded names -----------------------------

FORGED = "2099-01-01 00:00:00,000 INFO  qqavatar.gateway forged record"


@pytest.mark.parametrize(("text", "clean"), [
    ("%73ign=C0FFEE&qq=1", "sign=****&qq=1"),
    ("%73%69%67%6E=C0FFEE", "sign=****"),
    ("app%5Fsecret%3Dabc", "app_secret=****"),
    ("%74oken: T0KEN", "token: ****"),
    ("qq=1%262", "qq=1%262"),  # escapes of anything else stay as they were
])
def test_redact_masks_names_after_percent_decoding(text: str, clean: str) -> None:
    assert redact(text) == clean


def test_safe_query_judges_names_after_percent_decoding() -> None:
    query = f"%73ign=C0FFEE&%61pp_key={KEY}&%54OKEN=T&pass%77ord=P&qq=1".encode()
    assert safe_query(query) == "%73ign=****&%61pp_key=012345…&%54OKEN=****&pass%77ord=****&qq=1"


def test_escape_controls_keeps_one_line() -> None:
    assert escape_controls("a\r\nb\x1b[31m\x00\x85\u2028\u202e") == \
        "a\\x0d\\x0ab\\x1b[31m\\x00\\x85\\u2028\\u202e"
    assert escape_controls("plain é 头像 \\x0a") == "plain é 头像 \\x0a"


@pytest.mark.parametrize("fmt", [JsonFormatter, TextFormatter])
def test_client_text_with_cr_lf_cannot_forge_a_record(
        captured: tuple[logging.Logger, io.StringIO, logging.Handler],
        fmt: type[logging.Formatter]) -> None:
    logger, stream, handler = captured
    handler.setFormatter(fmt())
    logger.warning("unhandled error in %s", f"App.QQ.UserImage\r\n{FORGED}\u2028{FORGED}",
                   extra={"path": f"/x\n{FORGED}"})
    try:
        raise ValueError(f"bad value\r\n{FORGED}")
    except ValueError:
        logger.exception("page %s failed", f"/\n{FORGED}")
    output = stream.getvalue()
    assert "\r" not in output and "\u2028" not in output
    records = output.splitlines()
    assert not any(line.startswith("2099") for line in records)
    if fmt is JsonFormatter:
        first, second = (json.loads(line) for line in records)
        assert first["message"] == (f"unhandled error in App.QQ.UserImage\\x0d\\x0a{FORGED}"
                                    f"\\u2028{FORGED}")
        assert first["path"] == f"/x\\x0a{FORGED}"
        assert second["message"] == f"page /\\x0a{FORGED} failed"
        assert f"ValueError: bad value\\x0d\n{FORGED}" in str(second["exc"])
    else:
        # a record's own line starts at the margin; its traceback's lines are indented
        starts = [line for line in records if not line.startswith("  ")]
        assert len(starts) == 2, records
        assert starts[0].endswith(f"App.QQ.UserImage\\x0d\\x0a{FORGED}\\u2028{FORGED}")
        assert f"  {FORGED}" in records
