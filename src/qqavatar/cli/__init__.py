"""`qqavatar`: the operator's command line (serve, demo, app …).

Commands are imported when they are run or their help is asked for, and the command list
of `qqavatar --help` is written from `LAZY_COMMANDS` without importing any: printing a
line of help must not load the server, the database layer or the HTTP client (each adds
a tenth of a second or more). `serve` and `demo` live here but import what they run
inside their bodies.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, NamedTuple

import click

from .. import __version__
from ..web.servers import DEFAULT_SERVER, SERVERS, ServerName
from .config import MainGroup, config_file_option
from .serving import server_options

if TYPE_CHECKING:
    from ..settings import Settings
    from ..store.apps import AppRecord


class Lazy(NamedTuple):
    target: str   # "module:attribute" of the click command
    summary: str  # the first paragraph of its help (a test keeps the two equal)


LAZY_COMMANDS = {
    "app": Lazy("qqavatar.cli.apps:app", "Manage apps: the app_key/app_secret pairs callers use."),
    "config": Lazy("qqavatar.cli.config:config_command",
                   "Print the effective configuration, secrets masked, and where each value "
                   "came from."),
    "doctor": Lazy("qqavatar.cli.doctor:doctor",
                   "What this server would run with, and whether each part answers."),
    "fetch": Lazy("qqavatar.cli.consumer:fetch",
                  "Download the avatars of the numbers in LIST_FILE ('-': standard input), one "
                  "a line."),
    "get": Lazy("qqavatar.cli.consumer:get", "Download one avatar."),
    "stats": Lazy("qqavatar.cli.stats:stats",
                  "Calls per day, app and service: answers by ret, err_code < 0 answers "
                  "(sys.err), cache hits, upstream fetches and the app's daily active members."),
}
_LISTING = "qqavatar.listing"  # ctx.meta key: set while the command list is written


def load_command(name: str) -> click.Command:
    module, attribute = LAZY_COMMANDS[name].target.split(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command), LAZY_COMMANDS[name]
    return command


class LazyGroup(MainGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            if ctx.meta.get(_LISTING):  # a stand-in with the same help line, not imported
                return click.Command(cmd_name, help=LAZY_COMMANDS[cmd_name].summary)
            return load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            del ctx.meta[_LISTING]


@click.group(cls=LazyGroup)
@config_file_option
@click.version_option(__version__, prog_name="qqavatar")
def main() -> None:
    """Self-hosted, YesApi-compatible QQ avatar API."""


async def _first_app(settings: Settings) -> tuple[AppRecord, bool]:
    """Create the database if needed; return the oldest app, creating one on an empty store."""
    from ..store.apps import AppStore
    from ..store.db import make_engine, migrate

    engine = make_engine(settings.effective_database_url)
    try:
        await migrate(engine)
        store = AppStore(engine)
        apps = await store.list()
        if apps:
            return min(apps, key=lambda record: record.created_at), False
        return await store.create("default"), True
    finally:
        await engine.dispose()


def _serve(host: str, port: int, workers: int, server: ServerName = DEFAULT_SERVER) -> None:
    import asyncio

    import uvicorn

    from ..settings import Settings
    from ..web.servers import run_granian
    from .banner import banner_echo, database_line, first_app_line
    from .serving import dashboard_line, prepare_server

    settings = Settings()
    first, created = asyncio.run(_first_app(settings))
    base = f"http://{host if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}"
    say = banner_echo(settings)  # JSON lines when the log is JSON
    say(f"qqavatar {__version__} serving on {base}/")
    say(database_line(settings))  # no password
    say(f"  upstream: {settings.upstream_user_url}")
    if created:
        say(first_app_line(settings, first.name))
        say(f"    app_key    {first.app_key}")
        if sys.stdout.isatty():
            say(f"    app_secret {first.app_secret}")
        else:  # stdout is a log (systemd, a container): no secret in it
            say(f"    app_secret (not printed to a log: qqavatar app show {first.app_key})")
    else:
        say(f"  app_key of '{first.name}': {first.app_key}")
    say(f"  try: {base}/?s=App.QQ.UserImage&app_key={first.app_key}&qq=10001")
    say(dashboard_line(settings, base, sys.stdout.isatty()))  # stops on a short token
    if settings.demo:
        say(f"  demo page with private avatar links: {base}/demo/comments")
    log_config = prepare_server(settings, workers)  # metrics files and logging, for workers
    if server == "granian":
        run_granian(host, port, workers, log_config)
        return
    uvicorn.run(
        "qqavatar.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,  # ours is QQAVATAR_ACCESS_LOG (uvicorn's would log app_keys)
        server_header=False,
        # X-Forwarded-For/-Proto are believed only from QQAVATAR_TRUSTED_PROXIES (never
        # uvicorn's default of loopback): the client address feeds the IP allow-lists.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
    )


_host = click.option("--host", default="127.0.0.1", show_default=True)
_port = click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
_workers = click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
_server = click.option("--server", default=DEFAULT_SERVER, show_default=True,
                       type=click.Choice(SERVERS),
                       help="HTTP server: granian (RSGI) or uvicorn (ASGI).")


@main.command()
@_host
@_port
@_workers
@_server
@click.option("--demo", is_flag=True, help="Serve against a built-in fake qlogo (works offline).")
@server_options
def serve(host: str, port: int, workers: int, server: ServerName, demo: bool) -> None:
    """Start the API server."""
    if demo:
        _start_fake_upstream()
    _serve(host, port, workers, server)


@main.command()
@_host
@_port
@_workers
@_server
@server_options
def demo(host: str, port: int, workers: int, server: ServerName) -> None:
    """Start the API server against a built-in fake qlogo: real answers, offline."""
    _start_fake_upstream()
    _serve(host, port, workers, server)


def _start_fake_upstream() -> None:
    """Run the fake qlogo in this process; workers inherit its URL through the environment."""
    from ..fakeqlogo import serve_in_thread
    from ..settings import Settings
    from .banner import banner_echo

    fake = serve_in_thread()
    os.environ["QQAVATAR_UPSTREAM_USER_URL"] = f"{fake.url}/g?b=qq&nk={{qq}}&s={{size}}"
    os.environ["QQAVATAR_UPSTREAM_GROUP_URL"] = f"{fake.url}/gh/{{group}}/{{group}}/{{size}}/"
    os.environ["QQAVATAR_DEMO"] = "1"  # demo pages such as /demo/comments
    banner_echo(Settings())(f"demo: fake qlogo on {fake.url} (numbers ending in 0 have no "
                            "avatar)")  # a JSON line when the log is JSON


if __name__ == "__main__":
    main()
