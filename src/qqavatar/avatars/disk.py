"""The disk tier (`QQAVATAR_DISK_CACHE_DIR`, on by default in `<data dir>/avatars`):
memory → disk → upstream.

Only the upstream's own images are kept (transcoded copies and identicons are cheap to
make again); a restart reads them back instead of asking qlogo. One file per avatar,
`<dir>/<kind>/<last two digits>/<number>-<size>.avatar`: a JSON header line (what the
answer needs, the wall-clock expiry, and the ETag that doubles as a checksum), then the
image bytes. The memory tier in front is the hot set; the kernel's page cache keeps the
warm files in memory, shared by every worker and server on the host, as nginx's does.

- Writes are atomic: a temporary file in the same directory, then `os.replace`; a reader
  (any worker, any server on the host) sees the old file or the new one, never half of one.
- A file that does not parse, or whose body does not hash to its ETag, is removed and
  treated as absent.
- The bound is `max_bytes` of files (`disk_bound`: 1 GiB by default, less when the disk has
  less free). A read renews a file's mtime when it is older than `RENEW_SECONDS`, so mtime
  order is use order to that grain; past the bound the oldest files go until 90 % of it
  is left (the directory is rescanned then, which also counts what other workers wrote).
- Reads are `read`, inline on the event loop: an avatar file is a few KB, and from the page
  cache one open-read-close costs a few µs, far less than a hop to a worker thread. Writes,
  removals and scans run in worker threads; writes are fire-and-forget for the caller,
  `aclose` waits for those still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .model import Key, etag_of

log = logging.getLogger(__name__)

SUFFIX = ".avatar"
TMP_SUFFIX = ".tmp"
STALE_TMP_SECONDS = 60  # a temporary file older than this is a crashed write's leftover
EVICT_TO = 0.9
VERSION = 1
RENEW_SECONDS = 60  # a read renews an older mtime (one metadata write per file a minute)
DEFAULT_MAX_BYTES = 1024**3
FREE_SHARE = 2  # unset bound: at most half of what the disk has free


def disk_bound(directory: Path, configured: int | None) -> int:
    """The tier's bound: the configured one, or 1 GiB, less when the disk holding
    `directory` (or its nearest existing parent) has less than twice that free."""
    if configured is not None:
        return configured
    place = directory.absolute()
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        free = shutil.disk_usage(place).free
    except OSError:
        return DEFAULT_MAX_BYTES
    return min(DEFAULT_MAX_BYTES, free // FREE_SHARE)


@dataclass(frozen=True, slots=True)
class DiskEntry:
    body: bytes
    content_type: str
    is_default: bool
    size: int
    format: str
    modified_at: int
    expires_wall: float  # time.time() deadline of freshness
    max_age: int
    etag: str


class DiskCache:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self._root = str(directory)
        self.max_bytes = max_bytes
        self.total_bytes = 0      # exact after a scan, kept up to date by our own writes
        self.evictions = 0
        self.corrupt = 0
        self._scanned = False
        self._lock = threading.Lock()  # the accounting, shared by the worker threads
        self._pending: set[asyncio.Task[None]] = set()

    def path(self, key: Key) -> Path:
        return Path(self._file(key))

    def _file(self, key: Key) -> str:
        # Plain strings, not pathlib: Path interns every part of every name it parses, and
        # the interpreter's table of interned strings grew with the files (~300 B each).
        kind, number, size, variant = key
        assert not variant and number.isascii() and number.isdigit(), key
        return f"{self._root}/{kind}/{number[-2:]}/{number}-{size}{SUFFIX}"

    def read(self, key: Key) -> DiskEntry | None:
        """The stored entry of `key`, or None; blocking, but cheap from the page cache."""
        return self._read(key)

    async def load(self, key: Key) -> DiskEntry | None:
        """`read` in a worker thread."""
        return await asyncio.to_thread(self._read, key)

    def save(self, key: Key, entry: DiskEntry) -> None:
        """Write in the background; a failure is logged, never raised."""
        self._background(self._write, key, entry)

    def discard(self, key: Key) -> None:
        self._background(self._remove, self._file(key))

    async def flush(self) -> None:
        """Wait for the writes started so far."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        await self.flush()

    def scan(self) -> None:
        """Count what is on disk and sweep crashed writes' leftovers (blocking)."""
        with self._lock:
            self._scan()

    # --- in worker threads ------------------------------------------------------------------

    def _background(self, func: Callable[..., None], *args: object) -> None:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(func, *args))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _read(self, key: Key) -> DiskEntry | None:
        path = self._file(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("disk cache: cannot read %s: %s", path, exc)
            return None
        try:  # os.open/os.read: a third of what a Python file object costs per read
            stat = os.fstat(fd)
            raw = os.read(fd, stat.st_size + 1)  # +1: a file grown meanwhile fails to decode
        except OSError as exc:
            log.warning("disk cache: cannot read %s: %s", path, exc)
            return None
        finally:
            os.close(fd)
        entry = _decode(raw, key)
        if entry is None:
            self.corrupt += 1
            log.warning("disk cache: removing corrupt file %s", path)
            self._remove(path)
            return None
        if time.time() - stat.st_mtime > RENEW_SECONDS:
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: evicted last
        return entry

    def _write(self, key: Key, entry: DiskEntry) -> None:
        path = self._file(key)
        data = _encode(entry, key)
        folder, _, name = path.rpartition("/")
        tmp = f"{folder}/.{name}.{os.getpid()}.{threading.get_ident()}{TMP_SUFFIX}"
        try:
            os.makedirs(folder, exist_ok=True)
            with open(tmp, "wb") as file:
                file.write(data)
            try:
                replaced = os.stat(path).st_size
            except FileNotFoundError:
                replaced = 0
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("disk cache: cannot write %s: %s", path, exc)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        with self._lock:
            if not self._scanned:
                self._scan()  # counts the file just written too
            else:
                self.total_bytes += len(data) - replaced
            if self.total_bytes > self.max_bytes:
                self._evict()

    def _remove(self, path: str | Path) -> None:
        try:
            size = os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("disk cache: cannot remove %s: %s", path, exc)
            return
        with self._lock:
            self.total_bytes = max(0, self.total_bytes - size)

    def _files(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of every avatar file; leftover temporary files are removed."""
        found: list[tuple[float, int, Path]] = []
        now = time.time()
        for root, _, names in os.walk(self.directory):
            for name in names:
                path = Path(root, name)
                try:
                    stat = path.stat()
                    if name.endswith(TMP_SUFFIX):
                        if now - stat.st_mtime > STALE_TMP_SECONDS:
                            path.unlink()
                    elif name.endswith(SUFFIX):
                        found.append((stat.st_mtime, stat.st_size, path))
                except OSError:
                    continue  # removed meanwhile (another worker)
        return found

    def _scan(self) -> None:
        self.total_bytes = sum(size for _, size, _ in self._files())
        self._scanned = True

    def _evict(self) -> None:
        files = sorted(self._files())  # oldest use first
        total = sum(size for _, size, _ in files)
        target = int(self.max_bytes * EVICT_TO)
        for _, size, path in files:
            if total <= target:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                self.evictions += 1
            total -= size
        self.total_bytes = total


def _key_text(key: Key) -> str:
    kind, number, size, _ = key
    return f"{kind}/{number}/{size}"


def _encode(entry: DiskEntry, key: Key) -> bytes:
    header = {
        "v": VERSION, "key": _key_text(key), "etag": entry.etag,
        "content_type": entry.content_type, "is_default": entry.is_default,
        "size": entry.size, "format": entry.format, "modified_at": entry.modified_at,
        "expires": entry.expires_wall, "max_age": entry.max_age, "length": len(entry.body),
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + entry.body


def _decode(raw: bytes, key: Key) -> DiskEntry | None:
    """The entry in `raw`, or None when anything about it is off."""
    line, newline, body = raw.partition(b"\n")
    try:
        header = json.loads(line) if newline else None
        if not isinstance(header, dict) or header.get("v") != VERSION \
                or header.get("key") != _key_text(key) or header.get("length") != len(body):
            return None
        entry = DiskEntry(
            body=body,
            content_type=str(header["content_type"]),
            is_default=bool(header["is_default"]),
            size=int(header["size"]),
            format=str(header["format"]),
            modified_at=int(header["modified_at"]),
            expires_wall=float(header["expires"]),
            max_age=int(header["max_age"]),
            etag=str(header["etag"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return entry if etag_of(body) == entry.etag else None
