"""The data JSON of an avatar answered with output=0, in pieces, and its md5 states.

`_auth = md5(<data JSON> + _t + app_secret)`: for a 640 px avatar the data JSON is
~20-100 KB, and encoding and hashing it was most of a cached JSON answer's cost. The part
before `_t` is the same on every answer of one avatar, so its md5 state is kept and copied.
The data JSON is handed on as three pieces — a fixed head, the avatar's base64, and a
short tail — so the base64 is copied only once, into the body.

The avatar cache holds each image once (avatars/model.py); the base64 lives here, in a
small hot tier bounded by bytes: the avatars asked for as JSON most recently keep theirs,
the rest pay for encoding and hashing per answer (a few µs for 40-140 px, ~50 µs at 640).
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict

from ..avatars import Avatar
from ..protocol.envelope import Digest
from ..protocol.phpjson import encode_str

# Measured over the JSON calls of the mix benchmark's 10 000-number load (bench/mix.py),
# CPU per JSON call for its pieces: 10.2 µs made per answer, 7.0 µs with 4 MiB kept, 5.5 µs
# with 16 MiB, 4.1 µs with 64 MiB. 4 MiB takes a third off for little memory; each further
# µs would cost every worker another ~12-50 MiB, whether it answers JSON or not.
MAX_BYTES = 4 * 1024 * 1024
MAX_ENTRIES = 4096
ENTRY_OVERHEAD = 400  # the key, the md5 state, the tail and the tuples holding them
DATA_HEAD = b'{"err_code":0,"err_msg":"","img":"'

Pieces = tuple[bytes, bytes, Digest]  # base64 (PHP-escaped), tail, md5 state of the whole


def json_base64(body: bytes) -> bytes:
    """base64 of `body` with "/" as "\\/", as PHP's json_encode writes it."""
    return base64.b64encode(body).replace(b"/", b"\\/")


def data_tail(found: Avatar) -> bytes:
    """What follows the base64 in the data JSON."""
    return b"".join((
        b'","is_default":', b"true" if found.is_default else b"false",
        b',"content_type":', encode_str(found.content_type).encode("utf-8"),
        b',"size":%d}' % found.size,
    ))


def avatar_data(found: Avatar) -> bytes:
    """`data` for output=0, whole."""
    return DATA_HEAD + json_base64(found.body) + data_tail(found)


def pieces_of(found: Avatar) -> Pieces:
    """The base64, the tail and the md5 state after the whole data JSON, made now."""
    b64, tail = json_base64(found.body), data_tail(found)
    state = hashlib.md5(DATA_HEAD)
    state.update(b64)
    state.update(tail)
    return b64, tail, state


class DataDigests:
    """An LRU of `Pieces` keyed by what determines the data JSON of an avatar, bounded by
    the bytes it holds and by its number of entries."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_entries: int = MAX_ENTRIES) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.total_bytes = 0
        self._kept: OrderedDict[tuple[str, bool, str, int, int], Pieces] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def of(self, found: Avatar) -> Pieces:
        """`pieces_of(found)`, kept for the next answer of the same avatar when it fits."""
        # The ETag names the image bytes; the rest of `data` is these fields.
        key = (found.etag, found.is_default, found.content_type, found.size, len(found.body))
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        kept = pieces_of(found)
        cost = _cost(kept)
        if cost > self.max_bytes // 4:
            return kept  # one would crowd out many: made per answer
        self._kept[key] = kept
        self.total_bytes += cost
        while self.total_bytes > self.max_bytes or len(self._kept) > self.max_entries:
            _, evicted = self._kept.popitem(last=False)
            self.total_bytes -= _cost(evicted)
        return kept


def _cost(pieces: Pieces) -> int:
    return len(pieces[0]) + len(pieces[1]) + ENTRY_OVERHEAD
