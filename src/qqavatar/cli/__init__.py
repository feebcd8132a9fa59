"""`qqavatar`: the operator's command line (serve, demo, app …).

Commands other than `serve` and `demo` are imported when they are run: `qqavatar app
list` need not load the server, the statistics or the consumer's HTTP client first.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from typing import TYPE_CHECKING

import click

from .. import __version__
from ..settings import Settings
from ..web.servers import DEFAULT_SERVER, SERVERS, ServerName, run_granian
from .config import MainGroup, config_file_option
from .serving import prepare_server, server_options

if TYPE_CHECKING:
    from ..store.apps import AppRecord

# name → "module:attribute" of the click command
LAZY_COMMANDS = {
    "app": "qqavatar.cli.apps:app",
    "config": "qqavatar.cli.config:config_command",
    "fetch": "qqavatar.cli.consumer:fetch",
    "get": "qqavatar.cli.consumer:get",
    "stats": "qqavatar.cli.stats:stats",
}


class LazyGroup(MainGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command), LAZY_COMMANDS[cmd_name]
            return command
        return super().get_command(ctx, cmd_name)


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
    import uvicorn

    settings = Settings()
    first, created = asyncio.run(_first_app(settings))
    base = f"http://{host if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}"
    click.echo(f"qqavatar {__version__} serving on {base}/")
    click.echo(f"  database: {settings.effective_database_url}")
    click.echo(f"  upstream: {settings.upstream_user_url}")
    if created:
        click.echo(f"  created the first app '{first.name}':")
        click.echo(f"    app_key    {first.app_key}")
        if sys.stdout.isatty():
            click.echo(f"    app_secret {first.app_secret}")
        else:  # stdout is a log (systemd, a container): no secret in it
            click.echo(f"    app_secret (not printed to a log: qqavatar app show {first.app_key})")
    else:
        click.echo(f"  app_key of '{first.name}': {first.app_key}")
    click.echo(f"  try: {base}/?s=App.QQ.UserImage&app_key={first.app_key}&qq=10001")
    if settings.demo:
        click.echo(f"  demo page with private avatar links: {base}/demo/comments")
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

    fake = serve_in_thread()
    os.environ["QQAVATAR_UPSTREAM_USER_URL"] = f"{fake.url}/g?b=qq&nk={{qq}}&s={{size}}"
    os.environ["QQAVATAR_UPSTREAM_GROUP_URL"] = f"{fake.url}/gh/{{group}}/{{group}}/{{size}}/"
    os.environ["QQAVATAR_DEMO"] = "1"  # demo pages such as /demo/comments
    click.echo(f"demo: fake qlogo on {fake.url} (numbers ending in 0 have no avatar)")


if __name__ == "__main__":
    main()
