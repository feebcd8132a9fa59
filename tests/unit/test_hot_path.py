"""The hot path's shortcuts give exactly the answers of the general code they bypass."""

from __future__ import annotations

import hashlib
from email.utils import formatdate
from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from qqavatar.avatars import headers
from qqavatar.avatars.headers import image_headers
from qqavatar.avatars.model import make_avatar
from qqavatar.handlers.digests import DATA_HEAD, DataDigests, avatar_data
from qqavatar.httpcache import http_date
from qqavatar.protocol import sign
from qqavatar.protocol.envelope import auth, envelope
from qqavatar.protocol.errors import ApiError
from qqavatar.protocol.params import Enum, parse_bool, php_number
from qqavatar.web.request import MAX_PARAMS, parse_query


def _general_query(text: str) -> dict[str, str] | None:
    try:
        return dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace",
                              max_num_fields=MAX_PARAMS))
    except ValueError:
        return None


def _query(text: str) -> dict[str, str] | None:
    try:
        return parse_query(text)
    except ApiError as error:
        assert error.ret == 400
        return None


@given(st.text(alphabet="ab=&;é1_ ", max_size=24))
def test_query_without_escapes(text: str) -> None:
    assert _query(text) == _general_query(text)


def test_query_field_limit() -> None:
    for count in (MAX_PARAMS - 1, MAX_PARAMS, MAX_PARAMS + 1):
        text = "&".join(f"p{index}=1" for index in range(count))
        assert _query(text) == _general_query(text)
        assert _query("&" * count) == _general_query("&" * count)


@given(st.sampled_from(["0", "1", "", "true", "false", "TRUE", "ok", "2", "-1", " 1", "0.0",
                        "yes", "no", "1e3", ".5"]))
def test_bool_spellings(raw: str) -> None:
    number = php_number(raw)
    expected = number > 0 if number is not None else raw.lower() in ("ok", "true", "success",
                                                                      "on", "yes")
    assert parse_bool(raw) is expected


@given(st.one_of(st.integers(0, 1000).map(str),
                 st.sampled_from(["040", "40.0", " 40", "4e1", "+40", "٤٠", "", "x"])))
def test_enum_shortcut(raw: str) -> None:
    rule = Enum("size", default=100, options=(40, 100, 140, 640))
    number = php_number(raw)
    expected = next((option for option in rule.options if number == option), None)
    try:
        assert rule.convert(raw) == expected
    except ApiError:
        assert expected is None


@given(st.dictionaries(st.text(alphabet="aA_1-é. e\uffff", max_size=3), st.text(max_size=3),
                       max_size=6))
def test_sign_order(params: dict[str, str]) -> None:
    names = sorted((name for name in params if name != "sign"), key=sign._sort_key)
    text = "".join(params[name] for name in names) + "SECRET"
    expected = hashlib.md5(text.encode("utf-8", "replace")).hexdigest().upper()
    assert sign.compute_sign(params, "SECRET") == expected


def test_auth_from_a_kept_md5_state() -> None:
    digests = DataDigests(max_entries=2)
    found = make_avatar(b"\xff\xd8 not really a jpeg", "image/jpeg", is_default=False,
                        lifetime=60, now=0.0, size=40)
    data = avatar_data(found)
    assert data.startswith(b'{"err_code":0,"err_msg":"","img":"')
    for t in (1_700_000_000, 1_700_000_001):  # the kept state is copied, never consumed
        b64, tail, state = digests.of(found)
        pieces = (DATA_HEAD, b64, tail)
        assert b"".join(pieces) == data
        assert auth(data, t, "secret", state) == auth(data, t, "secret")
        assert auth(pieces, t, "secret") == auth(data, t, "secret")
        whole = envelope(200, data, "", t, "secret")
        assert envelope(200, data, "", t, "secret", state) == whole
        assert envelope(200, pieces, "", t, "secret", state) == whole
        assert envelope(200, pieces, "", t, None) == envelope(200, data, "", t, None)
    assert len(digests) == 1
    for index in range(3):  # bounded: the least recently used state goes
        other = make_avatar(bytes([index]) * 10, "image/png", is_default=True, lifetime=60,
                            now=0.0, size=100)
        _, tail, state = digests.of(other)
        assert state.hexdigest() == hashlib.md5(avatar_data(other)).hexdigest()
    assert len(digests) == 2


def test_the_json_hot_tier_is_bounded_by_bytes() -> None:
    """Kept pieces stay within max_bytes; an avatar too big for a quarter of it is answered
    with pieces made for it and not kept."""
    digests = DataDigests(max_bytes=40_000, max_entries=1000)
    for index in range(50):
        found = make_avatar(bytes([index]) * 3000, "image/jpeg", is_default=False,
                            lifetime=60, now=0.0, size=100)
        b64, tail, state = digests.of(found)
        assert state.hexdigest() == hashlib.md5(avatar_data(found)).hexdigest()
        assert digests.total_bytes <= digests.max_bytes
    assert 1 < len(digests) < 50
    big = make_avatar(b"\x01" * 9000, "image/jpeg", is_default=False, lifetime=60, now=0.0,
                      size=640)
    kept = len(digests)
    b64, tail, state = digests.of(big)
    assert DATA_HEAD + b64 + tail == avatar_data(big)
    assert len(digests) == kept and digests.of(big) is not digests.of(big)


@given(st.integers(0, 2**33))
def test_http_date_is_formatdate(unix: int) -> None:
    assert http_date(unix) == formatdate(unix, usegmt=True)


def test_image_headers_are_made_per_answer_from_a_bounded_table() -> None:
    found = make_avatar(b"\xff\xd8 jpeg", "image/jpeg", is_default=True, lifetime=60, now=0.0,
                        size=140, modified_at=1_700_000_000)
    assert image_headers(found, 5, "HIT") == [
        ("ETag", found.etag), ("Last-Modified", formatdate(1_700_000_000, usegmt=True)),
        ("X-Avatar-Default", "1"), ("X-Avatar-Size", "140"),
        ("Cache-Control", "public, max-age=5"), ("X-Cache", "HIT")]
    for unix in range(headers.KEPT + 10):  # bounded: past KEPT the table starts afresh
        other = make_avatar(b"x", "image/png", is_default=False, lifetime=60, now=0.0,
                            size=40, modified_at=unix)
        assert image_headers(other, 0, "HIT")[1] == ("Last-Modified", http_date(unix))
        assert len(headers._KEPT) <= headers.KEPT
