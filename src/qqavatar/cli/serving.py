"""What `qqavatar serve` arranges before uvicorn starts: log format, access log, metrics.

Worker processes re-import the app and see only the environment, so options that the
workers must honour are passed on as `QQAVATAR_*` variables, and the logging setup as
uvicorn's `log_config` (which every worker applies).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:  # imported when the server starts, not for `qqavatar --help`
    from ..settings import Settings

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client in each worker

F = TypeVar("F", bound=Callable[..., Any])


def server_options(command: F) -> F:
    """`--log-format` and `--access-log` for a command that starts the server."""

    @click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default=None,
                  help="Log lines as JSON or text; auto (default): text on a terminal, "
                       "else JSON. [QQAVATAR_LOG_FORMAT]")
    @click.option("--access-log", is_flag=True, default=False,
                  help="Log one line per request (off by default: the hot path stays "
                       "quiet). [QQAVATAR_ACCESS_LOG=1]")
    @functools.wraps(command)
    def wrapper(*args: Any, log_format: str | None, access_log: bool, **kwargs: Any) -> Any:
        if log_format is not None:
            os.environ["QQAVATAR_LOG_FORMAT"] = log_format
        if access_log:
            os.environ["QQAVATAR_ACCESS_LOG"] = "1"
        return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def prepare_server(settings: Settings, workers: int) -> dict[str, Any]:
    """Set up metrics for `workers` processes; return uvicorn's `log_config`."""
    from ..logs import resolve_format, uvicorn_log_config

    if workers > 1:
        os.environ[MULTIPROCESS_ENV] = str(_metrics_directory(settings.metrics_dir))
    else:
        os.environ.pop(MULTIPROCESS_ENV, None)  # one process: metrics in memory
    return uvicorn_log_config(resolve_format(settings.log_format), settings.log_level)


def _metrics_directory(configured: Path | None) -> Path:
    """An empty directory for this run's metric files: values of an earlier run (or of a
    worker that died) must not be added to this one's."""
    if configured is None:
        directory = Path(tempfile.mkdtemp(prefix="qqavatar-metrics-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        return directory
    configured.mkdir(parents=True, exist_ok=True)
    for stale in configured.glob("*.db"):
        stale.unlink()
    return configured


def dashboard_line(settings: Settings, base: str, on_terminal: bool) -> str:
    """The banner's line about /admin. On a first start on a terminal without a token it
    makes one (in the data dir); on a terminal it prints a one-time sign-in link, never the
    token. A token shorter than the minimum stops `serve` here, with one line."""
    from ..web.admin import access

    try:
        return _dashboard_line(settings, base, on_terminal)
    except access.TokenTooShort as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, UnicodeError) as exc:  # an unreadable token file, a read-only data dir
        raise click.ClickException(f"admin token in {access.token_path(settings)}: {exc}"
                                   ) from None


def _dashboard_line(settings: Settings, base: str, on_terminal: bool) -> str:
    from ..web.admin import access

    token = access.configured_token(settings)
    if token is None and not on_terminal:
        return (f"  dashboard: off (set QQAVATAR_ADMIN_TOKEN, {access.MIN_TOKEN_LENGTH}+ "
                f"characters: {base}/admin says how)")
    if token is None:
        access.make_token(settings)
    if settings.admin_token:
        return f"  dashboard: {base}/admin (sign in with QQAVATAR_ADMIN_TOKEN)"
    where = access.token_path(settings)
    if not on_terminal:
        return f"  dashboard: {base}/admin (its token is in {where})"
    code = access.issue_sign_in_code(settings)
    return (f"  dashboard: {base}/admin/login?code={code} (a one-time sign-in link, for an "
            f"hour; the token is in {where})")
