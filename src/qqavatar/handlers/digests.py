"""The data JSON of an avatar answered with output=0, in pieces, and its md5 states.

`_auth = md5(<data JSON> + _t + app_secret)`: for a 640 px avatar the data JSON is
~100 KB, and hashing it was most of a cached JSON answer's cost. The part before
`_t` is the same on every answer of one avatar, so its md5 state is kept and copied.
The data JSON itself is handed on as three pieces — a fixed head, the avatar's ready
base64, and a short tail kept with the md5 state — so the base64 is copied only once,
into the body.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from ..avatars import Avatar
from ..protocol.envelope import Digest
from ..protocol.phpjson import encode_str

# An md5 state is ~0.2 KB and a tail ~0.1 KB: a few thousand hot avatars cost about a megabyte.
MAX_ENTRIES = 4096
DATA_HEAD = b'{"err_code":0,"err_msg":"","img":"'


def data_tail(found: Avatar) -> bytes:
    """What follows the base64 in the data JSON."""
    return b"".join((
        b'","is_default":', b"true" if found.is_default else b"false",
        b',"content_type":', encode_str(found.content_type).encode("utf-8"),
        b',"size":%d}' % found.size,
    ))


def avatar_data(found: Avatar) -> bytes:
    """`data` for output=0, whole (the base64 is pre-escaped)."""
    return DATA_HEAD + found.b64_json + data_tail(found)


class DataDigests:
    """An LRU of (tail, md5 state) keyed by what determines the data JSON of an avatar."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._kept: OrderedDict[tuple[str, bool, str, int, int], tuple[bytes, Digest]] = \
            OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def of(self, found: Avatar) -> tuple[bytes, Digest]:
        """`data_tail(found)`, and the md5 state after the whole data JSON."""
        # The ETag names the image bytes; the rest of `data` is these fields.
        key = (found.etag, found.is_default, found.content_type, found.size,
               len(found.b64_json))
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        tail = data_tail(found)
        state = hashlib.md5(DATA_HEAD)
        state.update(found.b64_json)
        state.update(tail)
        kept = self._kept[key] = (tail, state)
        if len(self._kept) > self.max_entries:
            self._kept.popitem(last=False)
        return kept
