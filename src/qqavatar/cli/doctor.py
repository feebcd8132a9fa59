"""`qqavatar doctor`: what this server would run with, and whether each part answers.

The first thing to run when something is wrong. It reads the same configuration as
`qqavatar serve` and tries each part once, concurrently (doctor_checks.py): the database
(and how far its schema is migrated), Redis, the upstream templates (a real fetch of a
known avatar), the disk tier's free space; it shows the admin token only as set or not,
and the public URL and trusted proxies as the server will use them. Changes nothing.
Exit status 1 when a required part fails (the database, an upstream template).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the checks load asyncio and the drivers: not for `doctor --help`
    from .doctor_checks import Row


def print_table(rows: list[Row], header: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .doctor_checks import FAIL, OFF, OK, WARN

    styles = {OK: "green", FAIL: "bold red", WARN: "yellow", OFF: "dim"}
    table = Table("part", "status", "detail", title=header, title_justify="left")
    for row in rows:
        style = styles[row.status]
        table.add_row(row.part, f"[{style}]{row.status}[/{style}]", escape(row.detail))
    Console(highlight=False).print(table)


@click.command()
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds each part gets to answer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def doctor(timeout: float, as_json: bool) -> None:
    """What this server would run with, and whether each part answers.

    Checks the database (and its migration level), Redis, the upstream templates (a real
    fetch of a known avatar, timed) and the disk tier's free space; shows the admin token
    (set or not, never its value), the public URL and the trusted proxies. Changes
    nothing. Exits with 1 when the database or an upstream template fails.
    """
    import asyncio

    from .. import __version__
    from ..config import config_path
    from ..settings import Settings
    from .doctor_checks import FAIL, run_checks

    settings = Settings()
    rows = asyncio.run(run_checks(settings, timeout))
    healthy = not any(row.status == FAIL for row in rows)
    if as_json:
        click.echo(json.dumps({"ok": healthy, "checks": [asdict(row) for row in rows]},
                              ensure_ascii=False, indent=2))
    else:
        path = config_path()
        print_table(rows, f"qqavatar {__version__}, configuration file: {path or 'none'}")
    if not healthy:
        sys.exit(1)
