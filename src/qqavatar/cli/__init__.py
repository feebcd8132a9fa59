"""`qqavatar`: the operator's command line (serve, demo, app …)."""

from __future__ import annotations

import asyncio
import os

import click

from .. import __version__
from ..settings import Settings
from ..store.apps import AppRecord, AppStore
from ..store.db import make_engine, migrate
from .apps import app as app_group


@click.group()
@click.version_option(__version__, prog_name="qqavatar")
def main() -> None:
    """Self-hosted, YesApi-compatible QQ avatar API."""


main.add_command(app_group)


async def _first_app(settings: Settings) -> tuple[AppRecord, bool]:
    """Create the database if needed; return the oldest app, creating one on an empty store."""
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


def _serve(host: str, port: int, workers: int) -> None:
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
        click.echo(f"    app_secret {first.app_secret}")
    else:
        click.echo(f"  app_key of '{first.name}': {first.app_key}")
    click.echo(f"  try: {base}/?s=App.QQ.UserImage&app_key={first.app_key}&qq=10001")
    uvicorn.run(
        "qqavatar.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
        server_header=False,
    )


_host = click.option("--host", default="127.0.0.1", show_default=True)
_port = click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
_workers = click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))


@main.command()
@_host
@_port
@_workers
@click.option("--demo", is_flag=True, help="Serve against a built-in fake qlogo (works offline).")
def serve(host: str, port: int, workers: int, demo: bool) -> None:
    """Start the API server."""
    if demo:
        _start_fake_upstream()
    _serve(host, port, workers)


@main.command()
@_host
@_port
@_workers
def demo(host: str, port: int, workers: int) -> None:
    """Start the API server against a built-in fake qlogo: real answers, offline."""
    _start_fake_upstream()
    _serve(host, port, workers)


def _start_fake_upstream() -> None:
    """Run the fake qlogo in this process; workers inherit its URL through the environment."""
    from ..fakeqlogo import serve_in_thread

    fake = serve_in_thread()
    os.environ["QQAVATAR_UPSTREAM_USER_URL"] = f"{fake.url}/g?b=qq&nk={{qq}}&s={{size}}"
    os.environ["QQAVATAR_UPSTREAM_GROUP_URL"] = f"{fake.url}/gh/{{group}}/{{group}}/{{size}}/"
    click.echo(f"demo: fake qlogo on {fake.url} (numbers ending in 0 have no avatar)")


if __name__ == "__main__":
    main()
