"""`qqavatar get` and `qqavatar fetch`: avatars from a qqavatar server, for its users.

The server and app come from `--url/--app-key/--app-secret` or the environment
(`QQAVATAR_URL`, `QQAVATAR_APP_KEY`, `QQAVATAR_APP_SECRET`).

The HTTP client (httpx) and the batch engine are imported inside the commands, so that
`qqavatar get --help` answers at once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..client import Image
    from .batch import Kind, Summary

F = TypeVar("F", bound=Callable[..., Any])

SIZES = ("40", "100", "140", "640")


def server_options(command: F) -> F:
    options = (
        click.option("--url", envvar="QQAVATAR_URL", default="http://127.0.0.1:8000",
                     show_default=True, show_envvar=True, help="The qqavatar server."),
        click.option("--app-key", envvar="QQAVATAR_APP_KEY", required=True, show_envvar=True,
                     help="Your app_key."),
        click.option("--app-secret", envvar="QQAVATAR_APP_SECRET", show_envvar=True,
                     help="Your app_secret: requests are signed and answers verified."),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=15.0,
                     show_default=True, help="Seconds per request."),
        click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True,
                     help="Retries of system failures (err_code < 0, no connection)."),
    )
    for option in reversed(options):
        command = option(command)
    return command


kind_option = click.option("--group", "is_group", is_flag=True,
                           help="Numbers are QQ groups (App.QQ.GroupImage), not users.")
size_option = click.option("--size", type=click.Choice(SIZES), default="100", show_default=True,
                           help="Pixels.")


@click.command()
@click.argument("number")
@kind_option
@size_option
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write ('-': standard output). Default: standard output when it is "
                   "not a terminal, else NUMBER_SIZE.EXT in the current directory.")
@server_options
def get(number: str, is_group: bool, size: str, output: str | None, url: str, app_key: str,
        app_secret: str | None, timeout: float, retries: int) -> None:
    """Download one avatar."""
    # httpx imports its own command line (rich, pygments: ~45 ms of CPU) when they are
    # installed; its fallback for a missing one is a stub, and we never run it.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from ..client import Client, QQAvatarError
    from .batch import reason, write_atomically

    try:
        with Client(url, app_key, app_secret, timeout=timeout, retries=retries) as client:
            download: Callable[[str, int], Image] = (
                client.group_image if is_group else client.user_image)
            image = download(number, int(size))
    except QQAvatarError as error:
        raise click.ClickException(reason(error)) from None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--url") from None
    if output == "-" or (output is None and not sys.stdout.isatty()):
        sys.stdout.buffer.write(image.content)
        sys.stdout.buffer.flush()
        return
    path = Path(output) if output is not None else Path(f"{number}_{size}.{image.extension}")
    try:
        write_atomically(path, image.content)
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error}") from None
    click.echo(f"{path}: {describe(image)}", err=True)


def describe(image: Image) -> str:
    text = f"{image.content_type}, {len(image.content)} bytes, {image.size}px"
    return text + (", default avatar (the number has none of its own)" if image.is_default else "")


@click.command()
@click.argument("list_file", type=click.File("r", encoding="utf-8"))
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, writable=True, path_type=Path),
              help="Directory for NUMBER_SIZE.EXT files (created if missing).")
@kind_option
@size_option
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Requests in flight at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@server_options
def fetch(list_file: IO[str], out_dir: Path, is_group: bool, size: str, concurrency: int,
          as_json: bool, url: str, app_key: str, app_secret: str | None, timeout: float,
          retries: int) -> None:
    """Download the avatars of the numbers in LIST_FILE ('-': standard input), one a line.

    Blank lines and '#' comments are skipped. Files already in --out are skipped, so an
    interrupted run picks up where it stopped. Exits with 1 when any number failed.
    """
    import asyncio

    import httpx
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from ..client import AsyncClient
    from .batch import fetch_all, read_numbers

    numbers = read_numbers(list_file)
    kind: Kind = "group" if is_group else "user"
    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True)

    async def run() -> Summary:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with AsyncClient(url, app_key, app_secret, timeout=timeout, retries=retries,
                               limits=limits) as client:
            task = progress.add_task("fetching", total=len(numbers.entries))
            return await fetch_all(client, numbers, out_dir, kind=kind, size=int(size),
                                   concurrency=concurrency,
                                   advance=lambda: progress.advance(task))

    try:
        with progress:
            summary = asyncio.run(run())
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--url") from None
    except OSError as error:
        raise click.ClickException(f"cannot use {out_dir}: {error}") from None
    if as_json:
        click.echo(json.dumps(summary_json(summary), ensure_ascii=False))
    else:
        print_summary(summary)
    if not summary.ok:
        sys.exit(1)


def summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "fetched": summary.fetched,
        "skipped": summary.skipped,
        "failed": [{"number": number, "reason": why} for number, why in summary.failed],
        "not_attempted": summary.not_attempted,
        "duplicates": summary.duplicates,
        "stopped": summary.stopped,
    }


def print_summary(summary: Summary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    line = (f"fetched {len(summary.fetched)}, skipped {len(summary.skipped)} (already there), "
            f"failed {len(summary.failed)}")
    if summary.duplicates:
        line += f", {summary.duplicates} duplicate line(s) ignored"
    console.print(line)
    if summary.failed:
        table = Table("number", "reason", title="failed", title_justify="left")
        for number, why in summary.failed:
            table.add_row(number, why)
        console.print(table)
    if summary.stopped is not None:
        console.print(f"stopped early, {summary.not_attempted} number(s) not attempted: "
                      f"{summary.stopped}")
