"""An upstream body read under a size bound that counts the bytes as they come out.

httpx inflates a gzip body one network read at a time: a 64 KiB read of a gzip "bomb"
becomes 64 MiB in one call, before any bound could look at it. Here the raw bytes are
inflated by us, never more than one byte past the bound per call, so the bound holds for
what ends up in memory, not for what crossed the wire.
"""

from __future__ import annotations

import zlib

# Content-Encoding values we read. `deflate` is zlib-wrapped (RFC 9110); zlib's automatic
# header detection (32 + MAX_WBITS) also reads gzip under either name.
_INFLATED = frozenset({"gzip", "x-gzip", "deflate"})
_AUTO_HEADER = 32 + zlib.MAX_WBITS

ACCEPT_ENCODING = "gzip, deflate"  # what we ask for: what `BoundedBody` can read


class BodyTooLarge(ValueError):
    """More than the bound, counted after inflating."""


class BadEncoding(ValueError):
    """A Content-Encoding we do not read, or a compressed body that does not inflate."""


class BoundedBody:
    """Collects one response body: `feed` it the raw bytes, then `finish`."""

    def __init__(self, content_encoding: str, max_bytes: int) -> None:
        encoding = content_encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in _INFLATED:
            self._inflater = zlib.decompressobj(_AUTO_HEADER)
        else:  # br, zstd, stacked codings: nothing we asked for
            raise BadEncoding(f"Content-Encoding {content_encoding!r}")
        self.max_bytes = max_bytes
        # Chunks, joined once at the end (one read, the usual avatar: kept as it came). A
        # growing bytearray copied out at the end left a freed buffer of the body's size
        # behind every cached avatar: ~1 KB of heap holes each, measured in RSS.
        self._chunks: list[bytes] = []
        self._length = 0

    def feed(self, raw: bytes) -> None:
        if self._inflater is None:
            self._add(raw)
            return
        data = raw
        while data and not self._inflater.eof:  # bytes after the end of the stream: ignored
            try:
                # At most one byte past the bound per call; the rest waits in unconsumed_tail.
                self._add(self._inflater.decompress(data, self.max_bytes - self._length + 1))
            except zlib.error as exc:
                raise BadEncoding(f"the body does not inflate: {exc}") from None
            data = self._inflater.unconsumed_tail

    def finish(self) -> bytes:
        if self._inflater is not None and not self._inflater.eof:
            raise BadEncoding("the compressed body ends before its stream does")
        return self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)

    def _add(self, chunk: bytes) -> None:
        self._length += len(chunk)
        if self._length > self.max_bytes:
            raise BodyTooLarge(f"over {self.max_bytes} bytes")
        if chunk:
            self._chunks.append(bytes(chunk))  # a memoryview or bytearray chunk: ours now
