"""Where the dashboard's token comes from, and the one-time sign-in link of a first start.

- `QQAVATAR_ADMIN_TOKEN` (environment or config file) wins.
- Else the token `qqavatar serve` made in the data dir (`admin-token`, mode 0600) on its
  first start on a terminal; every worker reads the same file.
- A token shorter than `MIN_TOKEN_LENGTH` is refused: `serve` will not start with one,
  and a server started any other way keeps its dashboard off and logs why.

A sign-in link carries a one-time code, not the token: its hash waits in the data dir
(`admin-sign-in`, 0600) for an hour, and the first worker to redeem it renames the file
away (a rename succeeds once), so the link works once whatever the number of workers.
Plain files, no imports of the web stack: the CLI uses this before the server starts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...settings import Settings

log = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 32
TOKEN_FILE = "admin-token"
CODE_FILE = "admin-sign-in"
CODE_SECONDS = 3600
TURN_ON = (f"set QQAVATAR_ADMIN_TOKEN to a random string of {MIN_TOKEN_LENGTH} or more "
           "characters and restart, or start `qqavatar serve` once on a terminal: it makes "
           "a token in the data directory and prints a sign-in link")


class TokenTooShort(ValueError):
    def __init__(self, length: int) -> None:
        super().__init__(
            f"the admin token (QQAVATAR_ADMIN_TOKEN) has {length} characters; the dashboard "
            f"needs at least {MIN_TOKEN_LENGTH} (make one: python -c 'import secrets; "
            f"print(secrets.token_urlsafe(32))')")


def token_path(settings: Settings) -> Path:
    return settings.data_dir / TOKEN_FILE


def configured_token(settings: Settings) -> str | None:
    """The token in force: the setting, else the data dir's file; None: the dashboard is off.

    Raises TokenTooShort for a token shorter than MIN_TOKEN_LENGTH.
    """
    token = settings.admin_token or _read(token_path(settings))
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise TokenTooShort(len(token))
    return token


def dashboard_token(settings: Settings) -> str | None:
    """`configured_token`, with a too-short or unreadable token turned into "off" (and a
    log line)."""
    try:
        return configured_token(settings)
    except (TokenTooShort, OSError, UnicodeError) as exc:
        log.warning("admin dashboard off: %s", exc)
        return None


def make_token(settings: Settings) -> str:
    """A new strong token in the data dir's file (0600); the file's token if one is there."""
    path = token_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    try:
        _write_private(path, token + "\n", exclusive=True)
    except FileExistsError:  # another `serve` on this data dir was first
        return _read(path) or token
    return token


def issue_sign_in_code(settings: Settings) -> str:
    """A new one-time code (an earlier unused one stops working)."""
    code = secrets.token_urlsafe(32)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(settings.data_dir / CODE_FILE, _digest(code), exclusive=False)
    return code


def redeem_sign_in_code(settings: Settings, code: str) -> bool:
    """True once for the code `issue_sign_in_code` made last, within CODE_SECONDS."""
    path = settings.data_dir / CODE_FILE
    try:
        stored = path.read_text(encoding="ascii").strip()
        issued = path.stat().st_mtime
    except (OSError, UnicodeDecodeError):
        return False
    if not hmac.compare_digest(stored.encode("ascii"), _digest(code).encode("ascii")):
        return False
    claimed = path.with_name(f".{CODE_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.rename(claimed)  # exactly one worker (and one request) gets here first
    except OSError:
        return False
    claimed.unlink(missing_ok=True)
    return time.time() - issued < CODE_SECONDS


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def _write_private(path: Path, text: str, *, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)  # whatever the file was before
        file.write(text)
