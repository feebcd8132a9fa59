"""`qqavatar app …`: create, list, show, update and delete apps.

Every command opens the configured database, migrates it (so a fresh data
directory just works) and closes it again. `--json` output is exactly one JSON
value on stdout, for scripts; messages and errors go to stderr.

A command that writes stops with status 2 before writing when QQAVATAR_SECRET_KEY is not
the key the database's secrets are sealed with (store.sealing); `list` and `delete` still
work on an app sealed under another key, so a stray row can be found and removed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import click

from qqavatar.limits.limit_values import (
    MAX_RATE_LIMIT,
    clean_cidrs,
    clean_domains,
    clean_limit,
    split_list,
)
from qqavatar.protocol.sign import SCHEMES, YESAPI

from .database import run_with_engine

if TYPE_CHECKING:  # the store loads SQLAlchemy: imported where a command runs, not for --help
    from qqavatar.secretbox import SecretBox
    from qqavatar.store.apps import AppRecord, AppStore, UnreadableApp
    from qqavatar.store.sealing import SealCount

T = TypeVar("T")

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
SCHEME_HELP = ("The request sign the app takes: yesapi (YesApi's md5, what its SDKs send) or "
               "hmac-sha256 (separators, service name, timestamp and nonce; qqavatar.client "
               "speaks it; docs/security.md). hmac-sha256 always requires a sign.")


def run_with_store(work: Callable[[AppStore], Awaitable[T]]) -> T:
    """Open the configured database, migrate it, run `work`, close it."""
    from qqavatar.store.apps import AppStore

    return run_with_engine(lambda engine: work(AppStore(engine)))


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def format_time(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def echo_record(record: AppRecord, *, with_secret: bool = True) -> None:
    lines = [("app_key", record.app_key)]
    if with_secret:
        lines.append(("app_secret", record.app_secret))
    lines += [
        ("name", record.name),
        ("sign_required", "yes" if record.sign_required else "no"),
        ("sign_scheme", record.sign_scheme),
        ("created_at", format_time(record.created_at)),
        ("updated_at", format_time(record.updated_at)),
        ("daily_quota", _or_none(record.daily_quota)),
        ("monthly_quota", _or_none(record.monthly_quota)),
        ("rate_limit", _or_none(record.rate_limit, "/s")),
        ("ip_allow", ", ".join(record.ip_allow) or "none"),
        ("domains", ", ".join(record.domains) or "none"),
    ]
    for label, value in lines:
        click.echo(f"{label:<14} {value}")


def _or_none(limit: int | None, unit: str = "") -> str:
    return "none" if limit is None else f"{limit}{unit}"


def limit_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """A count limit: a whole number; 0 or `none` clears it (given back as 0)."""
    if value is None:
        return None
    text = value.strip().lower()
    if text == "none":
        return 0
    if not text.isdecimal() or not text.isascii():
        raise click.BadParameter(f"{value!r} is not a whole number (or 0 / none to clear)")
    return int(text)


def list_option(_ctx: click.Context, _param: click.Parameter,
                value: str | None) -> list[str] | None:
    """A comma-separated list; an empty value or `none` clears it (given back as [])."""
    return None if value is None else split_list(value)


def _check_limits(daily_quota: int | None, monthly_quota: int | None, rate_limit: int | None,
                  ip_allow: list[str] | None, domains: list[str] | None) -> None:
    """The store's own checks, run first so that an error names its option."""
    checks: list[tuple[str, Callable[[], object]]] = [
        ("--daily-quota", lambda: clean_limit(daily_quota, "daily quota")),
        ("--monthly-quota", lambda: clean_limit(monthly_quota, "monthly quota")),
        ("--rate-limit", lambda: clean_limit(rate_limit, "rate limit", MAX_RATE_LIMIT)),
        ("--ip-allow", lambda: clean_cidrs(ip_allow or ())),
        ("--domains", lambda: clean_domains(domains or ())),
    ]
    for option, check in checks:
        try:
            check()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from exc


def normalise_key(app_key: str) -> str:
    # Keys are always uppercase hex, so accepting lowercase can match nothing else.
    return app_key.strip().upper()


def no_such_app(app_key: str) -> click.ClickException:
    return click.ClickException(f"no app with app_key {app_key}")


def stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


@click.group("app")
def app() -> None:
    """Manage apps: the app_key/app_secret pairs callers use."""


@app.command("create")
@click.argument("name")
@click.option("--sign-required", is_flag=True, help="Reject requests without a valid sign.")
@click.option("--sign-scheme", type=click.Choice(SCHEMES), default=YESAPI, show_default=True,
              help=SCHEME_HELP)
@json_option
def create_command(name: str, sign_required: bool, sign_scheme: str, as_json: bool) -> None:
    """Create an app called NAME and print its key and secret."""
    try:
        record = run_with_store(lambda store: store.create(
            name, sign_required=sign_required, sign_scheme=sign_scheme))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    if as_json:
        echo_json(record.public_dict())
        return
    echo_record(record)
    click.echo("Keep app_secret private: it signs requests and verifies _auth.", err=True)


@app.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """List all apps (without their secrets; see `app show`).

    Apps whose secret is sealed under another key are listed last, marked (servers skip
    them): remove one with `qqavatar app delete APP_KEY`.
    """
    records, unreadable = run_with_store(lambda store: store.read_all())
    if as_json:
        echo_json([record.public_dict(with_secret=False) for record in records]
                  + [_unreadable_json(app) for app in unreadable])
        return
    if not records and not unreadable:
        click.echo("No apps yet. Create one with: qqavatar app create NAME", err=True)
        return
    click.echo(f"{'APP_KEY':<32}  {'SIGN':<4}  {'CREATED':<23}  NAME")
    for record in records:
        sign = "yes" if record.sign_required else "no"
        click.echo(
            f"{record.app_key:<32}  {sign:<4}  {format_time(record.created_at):<23}  {record.name}"
        )
    for app in unreadable:
        click.echo(f"{app.app_key:<32}  {'?':<4}  {'?':<23}  {app.name}  (NOT SERVED: "
                   f"{app.reason})")


def _unreadable_json(app: UnreadableApp) -> dict[str, object]:
    return {"app_key": app.app_key, "name": app.name, "unreadable": app.reason}


@app.command("show")
@click.argument("app_key")
@json_option
def show_command(app_key: str, as_json: bool) -> None:
    """Show one app, secret included."""
    key = normalise_key(app_key)
    record = run_with_store(lambda store: store.get(key))
    echo_found(record, key, as_json)


def echo_found(record: AppRecord | None, key: str, as_json: bool) -> None:
    """An app as `show` and `update` print it, or the unknown-key error."""
    if record is None:
        raise no_such_app(key)
    if as_json:
        echo_json(record.public_dict())
    else:
        echo_record(record)


@app.command("update")
@click.argument("app_key")
@click.option("--name", help="A new name.")
@click.option(
    "--sign-required/--no-sign-required",
    default=None,
    help="Turn mandatory request signing on or off.",
)
@click.option("--sign-scheme", type=click.Choice(SCHEMES), default=None, help=SCHEME_HELP)
@click.option(
    "--rotate-secret", is_flag=True, help="Issue a new app_secret; the old one stops working."
)
@click.option("--daily-quota", callback=limit_option, metavar="N",
              help="Calls allowed per day (UTC+8); more are ret 413. 0 or none: no quota.")
@click.option("--monthly-quota", callback=limit_option, metavar="N",
              help="Calls allowed per month (UTC+8); more are ret 413. 0 or none: no quota.")
@click.option("--rate-limit", callback=limit_option, metavar="N",
              help="Calls allowed per second; more are ret 408. 0 or none: no limit.")
@click.option("--ip-allow", callback=list_option, metavar="CIDR[,CIDR…]",
              help="Only these client addresses may call (others: ret 402). none: anyone.")
@click.option("--domains", callback=list_option, metavar="HOST[,HOST…]",
              help="Only requests to these Host names are served (others: ret 406). "
                   "none: any host.")
@json_option
def update_command(
    app_key: str,
    name: str | None,
    sign_required: bool | None,
    sign_scheme: str | None,
    rotate_secret: bool,
    daily_quota: int | None,
    monthly_quota: int | None,
    rate_limit: int | None,
    ip_allow: list[str] | None,
    domains: list[str] | None,
    as_json: bool,
) -> None:
    """Change an app's name, signing switch, secret or limits."""
    limits = (daily_quota, monthly_quota, rate_limit, ip_allow, domains)
    if name is None and sign_required is None and sign_scheme is None and not rotate_secret \
            and all(limit is None for limit in limits):
        raise click.UsageError(
            "nothing to change: give --name, --sign-required/--no-sign-required, "
            "--sign-scheme, --rotate-secret, --daily-quota, --monthly-quota, --rate-limit, "
            "--ip-allow or --domains"
        )
    _check_limits(daily_quota, monthly_quota, rate_limit, ip_allow, domains)
    key = normalise_key(app_key)
    try:
        record = run_with_store(
            lambda store: store.update(
                key, name=name, sign_required=sign_required, rotate_secret=rotate_secret,
                daily_quota=daily_quota, monthly_quota=monthly_quota, rate_limit=rate_limit,
                ip_allow=ip_allow, domains=domains, sign_scheme=sign_scheme,
            )
        )
    except ValueError as exc:  # the limits were checked above: only the name is left
        raise click.BadParameter(str(exc), param_hint="--name") from exc
    echo_found(record, key, as_json)


@app.command("delete")
@click.argument("app_key")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete_command(app_key: str, yes: bool) -> None:
    """Delete an app; its key stops working at once."""
    key = normalise_key(app_key)
    # By name only: the secret stays closed, so an app sealed under another key can go too.
    name = run_with_store(lambda store: store.name_of(key))
    if name is None:
        raise no_such_app(key)
    if not yes:
        if not stdin_is_interactive():
            raise click.ClickException(
                "refusing to delete without confirmation: stdin is not a terminal; pass --yes"
            )
        click.confirm(f"Delete app {key} ({name})?", abort=True, err=True)
    if not run_with_store(lambda store: store.delete(key)):
        raise no_such_app(key)  # deleted by someone else meanwhile
    click.echo(f"Deleted app {key} ({name}).")


@app.command("rotate-link-key")
@click.argument("app_key")
@json_option
def rotate_link_key_command(app_key: str, as_json: bool) -> None:
    """Give an app a new private-link key: every link made so far answers 404."""
    from qqavatar.store.link_keys import LinkKeyStore

    key = normalise_key(app_key)
    if not run_with_store(lambda store: LinkKeyStore(store.engine).rotate(key)):
        raise no_such_app(key)
    if as_json:
        echo_json({"app_key": key, "link_key_rotated": True})
    else:
        click.echo(f"Rotated the link key of app {key}: its private links made so far stop "
                   "working (within a second on running servers).")


def old_key_option(_ctx: click.Context, _param: click.Parameter,
                   value: str | None) -> SecretBox | None:
    """`--old-key KEY`, or `--old-key -` to read it from stdin (kept out of `ps` and history)."""
    from qqavatar.secretbox import SecretBox, check_key

    if value is None:
        return None
    if value == "-":
        value = sys.stdin.readline().strip()
    try:
        return SecretBox(check_key(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--old-key") from None


@app.command("encrypt-secrets")
@click.option("--old-key", callback=old_key_option, metavar="KEY|-",
              help="The previous QQAVATAR_SECRET_KEY: secrets it encrypted are re-encrypted "
                   "with the current one (key rotation). `-` reads it from stdin.")
@json_option
def encrypt_secrets_command(old_key: SecretBox | None, as_json: bool) -> None:
    """Encrypt every plaintext app_secret and private-link key with QQAVATAR_SECRET_KEY.

    Secrets written before the key was set keep working as they are; this seals them.
    Safe to repeat and to run while servers are up (one transaction; the secrets' values
    do not change). To rotate the key: set the new QQAVATAR_SECRET_KEY and run this with
    --old-key OLD, then restart the servers with the new key.
    """
    count: SealCount = run_with_store(lambda store: store.encrypt_secrets(old_box=old_key))
    if as_json:
        echo_json({"sealed": count.sealed, "resealed": count.resealed, "already": count.already})
        return
    click.echo(f"Encrypted {count.sealed} plaintext secret(s) and link key(s), re-encrypted "
               f"{count.resealed} from the old key; {count.already} were already encrypted "
               "with this key.")
