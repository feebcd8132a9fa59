"""Reading a YesApi envelope while keeping the exact bytes of `data`.

`_auth` is md5 over the `data` JSON *as the body carries it*; decoding and encoding
again would change escapes (`\\/`, `\\u00e9` …) and key order, so the members of the
top-level object are scanned one by one and each value's span in the text is kept.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from ..protocol.envelope import auth
from .exceptions import AuthMismatch, ProtocolError

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


@dataclass(frozen=True, slots=True)
class Envelope:
    ret: int
    data: dict[str, Any]
    data_json: bytes   # the exact bytes of `data` in the body
    msg: str
    t: int | None
    auth: str | None


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _expect(text: str, index: int, char: str) -> int:
    if index >= len(text) or text[index] != char:
        raise ValueError(f"expected {char!r} at {index}")
    return _skip(text, index + 1)


def members(text: str) -> dict[str, tuple[Any, int, int]]:
    """Top-level members of a JSON object: name → (value, start, end) of the value's text."""
    found: dict[str, tuple[Any, int, int]] = {}
    index = _expect(text, _skip(text, 0), "{")
    if index < len(text) and text[index] == "}":
        index = _skip(text, index + 1)
    else:
        while True:
            if index >= len(text) or text[index] != '"':
                raise ValueError(f"expected a member name at {index}")
            name, index = _DECODER.raw_decode(text, index)
            index = _expect(text, _skip(text, index), ":")
            value, end = _DECODER.raw_decode(text, index)
            found[name] = (value, index, end)
            index = _skip(text, end)
            if index < len(text) and text[index] == ",":
                index = _skip(text, index + 1)
                continue
            index = _expect(text, index, "}")
            break
    if index != len(text):
        raise ValueError(f"trailing text at {index}")
    return found


def parse_envelope(body: bytes) -> Envelope:
    """The envelope in `body`; ProtocolError when it is not one."""
    try:
        text = body.decode("utf-8")
        found = members(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"not a YesApi envelope: {exc}") from None
    ret = found.get("ret", (None, 0, 0))[0]
    if not isinstance(ret, int) or isinstance(ret, bool):
        raise ProtocolError("not a YesApi envelope: no integer `ret`")
    data, start, end = found.get("data", ({}, 0, 0))
    msg = found.get("msg", ("", 0, 0))[0]
    t = found.get("_t", (None, 0, 0))[0]
    received = found.get("_auth", (None, 0, 0))[0]
    return Envelope(
        ret=ret,
        # PHP encodes an empty array as `[]`: that is an empty `data` too.
        data=data if isinstance(data, dict) else {},
        data_json=text[start:end].encode("utf-8"),
        msg=msg if isinstance(msg, str) else str(msg),
        t=t if isinstance(t, int) and not isinstance(t, bool) else None,
        auth=received if isinstance(received, str) else None,
    )


def verify_auth(envelope: Envelope, secret: str) -> bool | None:
    """Raise AuthMismatch unless `_auth` = md5(data bytes + _t + secret); True when it holds.

    A success must carry `_auth`; a refusal may lack it (the server refused before it
    knew the app, e.g. a malformed app_key): None, it cannot be checked.
    """
    if envelope.auth is None:
        if envelope.ret == 200:
            raise AuthMismatch("the answer carries no _auth")
        return None
    if envelope.t is None:
        raise AuthMismatch("the answer carries _auth but no integer _t")
    expected = auth(envelope.data_json, envelope.t, secret)
    if not hmac.compare_digest(expected.encode("ascii"),
                               envelope.auth.lower().encode("utf-8", "replace")):
        raise AuthMismatch("_auth does not match: wrong app_secret, or the answer was altered",
                           expected=expected, received=envelope.auth)
    return True
