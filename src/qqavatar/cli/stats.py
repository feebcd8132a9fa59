"""`qqavatar stats`: calls per day, app and service, as a table or JSON rows."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from qqavatar.cli.apps import echo_json, json_option, normalise_key
from qqavatar.cli.database import run_with_engine

if TYPE_CHECKING:  # the statistics load SQLAlchemy: imported when the command runs
    from qqavatar.stats.queries import StatsRow

HEADERS = ("day", "app", "service", "calls", "by ret", "sys.err", "hits", "fetches", "members")


@click.command()
@click.option("--app", "app_key", metavar="APP_KEY", help="Only this app.")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 3660),
              help="How many days back, today (Asia/Shanghai) included.")
@json_option
def stats(app_key: str | None, days: int, as_json: bool) -> None:
    """Calls per day, app and service: answers by ret, err_code < 0 answers (sys.err),
    cache hits, upstream fetches and the app's daily active members.

    Days are Asia/Shanghai calendar days. Calls that named no known app are listed with
    app "-" (null in JSON), calls to services that do not exist with service "-" ("").
    A running server writes its counts within a second.
    """
    rows = _load(normalise_key(app_key) if app_key else None, days)
    if as_json:
        echo_json([row.to_json() for row in rows])
    elif not rows:
        click.echo(f"no calls in the last {days} day{'s' if days > 1 else ''}", err=True)
    else:
        _echo_table(rows)


def _load(app_key: str | None, days: int) -> list[StatsRow]:
    from qqavatar.stats.days import day_of
    from qqavatar.stats.queries import StatsQueries

    return run_with_engine(lambda engine: StatsQueries(engine).rows(
        today=day_of(time.time()), days=days, app_key=app_key))


def _echo_table(rows: list[StatsRow]) -> None:
    cells = [HEADERS] + [
        (
            row.day.isoformat(),
            row.app_key or "-",
            row.service or "-",
            str(row.calls),
            " ".join(f"{ret}:{count}" for ret, count in sorted(row.by_ret.items())),
            str(row.system_errors),
            str(row.cache_hits),
            str(row.upstream_fetches),
            str(row.active_members),
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(HEADERS))]
    numeric = {3, 5, 6, 7, 8}
    for line in cells:
        click.echo("  ".join(
            value.rjust(width) if index in numeric else value.ljust(width)
            for index, (value, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip())
