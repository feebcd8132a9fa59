"""`qqavatar fetch`'s engine: many avatars into a directory, concurrently and resumably.

A number is done when `<number>_<size>.<ext>` exists in the directory. Each image is
written to a hidden `.part` file and renamed into place, so an interrupted run never
leaves a partial file under a done-looking name; the next run fetches what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..client import (
    AsyncClient,
    AuthMismatch,
    BadSignature,
    Image,
    IpForbidden,
    QQAvatarError,
    QuotaExceeded,
    UnknownApp,
    UnknownService,
)
from ..client.exceptions import ApiError, ServiceError
from ..protocol.params import NUMBER_PATTERN

Kind = Literal["user", "group"]

# Errors about the app or the server, not the number: every other number would fail the
# same way, so the run stops instead of sending them all.
FATAL = (AuthMismatch, BadSignature, IpForbidden, QuotaExceeded, UnknownApp, UnknownService)


@dataclass(frozen=True, slots=True)
class Entry:
    number: str
    line: int


@dataclass(slots=True)
class NumberList:
    entries: list[Entry] = field(default_factory=list)
    invalid: list[tuple[Entry, str]] = field(default_factory=list)
    duplicates: int = 0


def read_numbers(lines: Iterable[str]) -> NumberList:
    """One number a line; blank lines and `#` comments skipped; each number once."""
    found = NumberList()
    seen: set[str] = set()
    for line_no, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        entry = Entry(text, line_no)
        if NUMBER_PATTERN.fullmatch(text) is None:
            found.invalid.append((entry, "not a QQ number (5 to 12 digits, no leading 0)"))
        elif text in seen:
            found.duplicates += 1
        else:
            seen.add(text)
            found.entries.append(entry)
    return found


def stem(number: str, size: int) -> str:
    return f"{number}_{size}"


def existing(directory: Path, number: str, size: int) -> Path | None:
    """The finished file for this number, if an earlier run wrote it."""
    for path in directory.glob(f"{stem(number, size)}.*"):
        if path.is_file():
            return path
    return None


def write_atomically(path: Path, content: bytes) -> None:
    """Write to a hidden temporary file, flush it to disk, then rename it into place.

    `.part` files of this name left by a killed run are removed first.
    """
    for leftover in path.parent.glob(f".{path.stem}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                             suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def reason(error: QQAvatarError) -> str:
    """The server's own words where there are some."""
    if isinstance(error, ApiError):
        return f"ret {error.ret}: {error.msg}"
    if isinstance(error, ServiceError):
        return f"err_code {error.err_code}: {error.err_msg}"
    return f"{type(error).__name__}: {error}"


@dataclass(slots=True)
class Summary:
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)   # (number, reason)
    not_attempted: int = 0
    duplicates: int = 0
    stopped: str | None = None     # why the run stopped early

    @property
    def ok(self) -> bool:
        return not self.failed and self.stopped is None


async def fetch_all(
    client: AsyncClient,
    numbers: NumberList,
    directory: Path,
    *,
    kind: Kind = "user",
    size: int = 100,
    concurrency: int = 8,
    advance: Callable[[], None] = lambda: None,
) -> Summary:
    """Fetch every listed number not already in `directory`; `advance` ticks per number."""
    summary = Summary(duplicates=numbers.duplicates)
    summary.failed += [(entry.number, f"line {entry.line}: {why}")
                       for entry, why in numbers.invalid]
    directory.mkdir(parents=True, exist_ok=True)
    pending: list[Entry] = []
    for entry in numbers.entries:
        if existing(directory, entry.number, size) is not None:
            summary.skipped.append(entry.number)
            advance()
        else:
            pending.append(entry)
    queue = iter(pending)
    fetch: Callable[[str, int], Awaitable[Image]] = (
        client.user_image if kind == "user" else client.group_image)

    async def worker() -> None:
        for entry in queue:  # one shared iterator: each entry goes to one worker
            if summary.stopped is not None:
                summary.not_attempted += 1
                continue
            try:
                image = await fetch(entry.number, size)
                target = directory / f"{stem(entry.number, size)}.{image.extension}"
                await asyncio.to_thread(write_atomically, target, image.content)
            except FATAL as error:
                summary.stopped = summary.stopped or reason(error)
                summary.failed.append((entry.number, reason(error)))
            except QQAvatarError as error:
                summary.failed.append((entry.number, reason(error)))
            except OSError as error:
                summary.failed.append((entry.number, f"cannot write: {error}"))
            else:
                summary.fetched.append(entry.number)
            advance()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(pending))))))
    return summary
