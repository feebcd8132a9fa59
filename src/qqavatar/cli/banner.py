"""The lines `qqavatar serve` prints before the server starts, in the log's own format.

With JSON logs (`log_format = "json"`, or `auto` when the output is not a terminal) each
line is one JSON object like every log line after it, so a log collector reading the stream
never meets plain text. The database URL is shown without its password.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..config import mask_url
from ..logs import JsonFormatter, resolve_format

if TYPE_CHECKING:
    from ..settings import Settings

LOGGER = "qqavatar.serve"


def banner_echo(settings: Settings) -> Callable[[str], None]:
    """`click.echo` for text logs; for JSON logs, a function printing each line as an object."""
    if resolve_format(settings.log_format) != "json":
        return click.echo
    formatter = JsonFormatter()

    def echo(line: str) -> None:
        record = logging.LogRecord(LOGGER, logging.INFO, __file__, 0, line.strip(), None, None)
        click.echo(formatter.format(record))

    return echo


def database_line(settings: Settings) -> str:
    return f"  database: {mask_url(settings.effective_database_url)}"


def first_app_line(settings: Settings, name: str) -> str:
    """Announces the app the first start made; on a shared database every server of the
    cluster serves it, so the operator is told (and how to remove it)."""
    if not settings.database_url:  # the embedded SQLite of one machine
        return f"  created the first app '{name}':"
    return (f"  created the first app '{name}' in the shared database (every server using it "
            "serves this app; remove it with `qqavatar app delete APP_KEY` if unwanted):")
