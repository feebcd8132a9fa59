"""JSON written byte for byte as PHP's `json_encode($x, JSON_UNESCAPED_UNICODE)`.

Clients verify `_auth` by re-encoding `data` with PHP, so every byte matters:
no spaces, `/` as `\\/`, non-ASCII as raw UTF-8 except U+2028/U+2029 (escaped),
control characters as `\\n`-style or `\\u00XX` escapes. Floats never appear in
our answers and are refused rather than risk a formatting difference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

# json.dumps already matches PHP for quotes, backslashes and control characters
# (\b \f \n \r \t short forms, others as lowercase \u00XX); PHP additionally
# escapes these three.
_EXTRA_ESCAPES = str.maketrans({"/": "\\/", "\u2028": "\\u2028", "\u2029": "\\u2029"})

_SURROGATE = re.compile("[\ud800-\udfff]")
_encode_str = json.encoder.encode_basestring


def encode_str(value: str) -> str:
    """One JSON string literal, PHP style. Lone surrogates become U+FFFD."""
    if not value.isascii():
        value = _SURROGATE.sub("\ufffd", value)
    return str(_encode_str(value)).translate(_EXTRA_ESCAPES)


def _encode(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(encode_str(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(encode_str(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as PHP-compatible JSON")


def dumps(value: object) -> bytes:
    """Encode `value` (dict, list, str, int, bool, None) as PHP would, UTF-8 bytes."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")
