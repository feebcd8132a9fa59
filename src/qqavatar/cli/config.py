"""`qqavatar --config FILE …` and `qqavatar config`: the configuration as the server sees it.

`--config` only puts the file's absolute path into `QQAVATAR_CONFIG`: the settings object
reads it from there, and so do uvicorn's worker processes, which inherit the environment.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..config import ConfigError, Entry
    from ..settings import Settings

# `..config` and `..settings` load pydantic (a tenth of a second): `qqavatar --help` must
# not pay for it, so they are imported where a command uses them.
CONFIG_MODULE = "qqavatar.config"


class ConfigProblem(click.ClickException):
    """One line on stderr, exit status 2 (as click's own usage errors)."""

    exit_code = 2

    def __init__(self, error: ConfigError) -> None:
        super().__init__(f"configuration: {error}")


class MainGroup(click.Group):
    """The `qqavatar` group: a bad configuration ends any command the same way."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            # Only a loaded configuration module can have raised its error.
            config = sys.modules.get(CONFIG_MODULE)
            if config is not None and isinstance(error, config.ConfigError):
                raise ConfigProblem(error) from None
            raise


def _use_config_file(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        from ..config import CONFIG_ENV

        os.environ[CONFIG_ENV] = str(value.resolve())


config_file_option = click.option(
    "--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    expose_value=False, is_eager=True, callback=_use_config_file,
    help="TOML file of settings: the names of the QQAVATAR_* variables in lower case without "
         "the prefix (cache_max_bytes = \"64MiB\"). Environment variables win over it. "
         "Same as QQAVATAR_CONFIG=FILE.",
)


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def config_command(as_json: bool) -> None:
    """Print the effective configuration, secrets masked, and where each value came from."""
    from ..config import config_path, effective
    from ..settings import Settings

    settings = Settings()
    entries = effective(settings)
    tiers = _cache_tiers(settings)
    path = config_path()
    file = str(path) if path is not None else None
    if as_json:
        click.echo(json.dumps({
            "config_file": file,
            "settings": {entry.name: entry.value for entry in entries},
            "sources": {entry.name: entry.source for entry in entries},
            "resolved": tiers,
        }, ensure_ascii=False, indent=2))
        return
    click.echo(f"# qqavatar configuration; file: {file or 'none'} (environment wins over it)")
    width = max(len(entry.name) for entry in entries)
    for entry in entries:
        click.echo(_line(entry, width))
    click.echo("# resolved at start: " + ", ".join(f"{name} = {_toml_value(value)}"
                                                  for name, value in tiers.items()))


def _cache_tiers(settings: Settings) -> dict[str, Any]:
    """The avatar cache tiers a server with `settings` would run with (defaults resolved)."""
    from ..avatars.disk import disk_bound

    directory = settings.disk_cache_path
    return {
        "memory_cache_bytes": settings.cache_max_bytes,
        "disk_cache_dir": str(directory.absolute()) if directory is not None else "off",
        "disk_cache_bytes": 0 if directory is None
        else disk_bound(directory, settings.disk_cache_max_bytes),
    }


def _line(entry: Entry, width: int) -> str:
    """A TOML line (copyable into a config file), the source as a comment."""
    if entry.value is None:
        assignment = f"# {entry.name:<{width}}   (not set)"
    else:
        assignment = f"{entry.name:<{width}} = {_toml_value(entry.value)}"
    return f"{assignment:<{width + 40}} # {entry.source}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string
