"""md5 states of avatars' `data` JSON, so `_auth` hashes a few bytes instead of the base64.

`_auth = md5(<data JSON> + _t + app_secret)`: for a 640 px avatar the data JSON is
~100 KB, and hashing it was most of a cached JSON answer's cost. The part before
`_t` is the same on every answer of one avatar, so its md5 state is kept and copied.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from ..avatars import Avatar
from ..protocol.envelope import Digest

# An md5 state is ~0.2 KB: a few thousand hot avatars cost well under a megabyte.
MAX_ENTRIES = 4096


class DataDigests:
    """An LRU of md5 states keyed by what determines the data JSON of an avatar."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._states: OrderedDict[tuple[str, bool, str, int, int], Digest] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def of(self, found: Avatar, data: bytes) -> Digest:
        """The md5 state after `data`, which must be `avatar_data(found)`."""
        # The ETag names the image bytes; the rest of `data` is these fields.
        key = (found.etag, found.is_default, found.content_type, found.size, len(data))
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
            return state
        state = hashlib.md5(data)
        self._states[key] = state
        if len(self._states) > self.max_entries:
            self._states.popitem(last=False)
        return state
