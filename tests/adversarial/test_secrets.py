"""Secrets at rest and in the open.

- `app_secret` is sealed in the database when `QQAVATAR_SECRET_KEY` is set (SQLite and
  PostgreSQL): the raw column never holds it, plaintext rows keep working until
  `qqavatar app encrypt-secrets` seals them, a wrong or missing key stops the server with one
  line and exit status 2, and key rotation (`--old-key`) moves every row.
- No secret, token or password shows up in logs or answers: a real server at debug level with
  the access log on is driven through every path that handles one — signed calls, bad signs,
  members, the admin login, a database that goes away — and then its whole output and every
  answer are searched for each of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import text

from qqavatar.config import ConfigError, mask_url, masked
from qqavatar.protocol.sign import compute_sign
from qqavatar.secretbox import PREFIX, SecretBox, SecretKeyError
from qqavatar.settings import Settings
from qqavatar.store.apps import AppStore
from qqavatar.store.db import alembic_config, make_engine, migrate
from qqavatar.store.link_keys import LinkKeyStore
from qqavatar.store.testing import EngineFactory
from tests.integration.test_api import assert_auth
from tests.postgres_fixture import as_env, fresh_database
from tests.server_fixture import RunningServer, free_port
from tests.tcp_relay import TcpRelay
from tests.unit.conftest import engines  # noqa: F401 - the per-database fixture

KEY_A = secrets.token_urlsafe(32)
KEY_B = secrets.token_urlsafe(32)


async def raw_secrets(store: AppStore) -> dict[str, str]:
    async with store.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT app_key, app_secret FROM apps"))).all()
    return {app_key: stored for app_key, stored in rows}


# --- at rest: the store, on every database --------------------------------------------------


@pytest.mark.anyio
async def test_raw_column_holds_no_secret(engines: EngineFactory) -> None:  # noqa: F811
    engine = engines()
    await migrate(engine)
    store = AppStore(engine, box=SecretBox(KEY_A))
    created = await store.create("sealed")
    rotated = await store.update(created.app_key, rotate_secret=True)
    assert rotated is not None and rotated.app_secret != created.app_secret
    other = await store.create("another")
    stored = await raw_secrets(store)
    for record in (rotated, other):
        assert stored[record.app_key].startswith(PREFIX)
        assert record.app_secret not in stored[record.app_key]
        assert len(stored[record.app_key]) <= 255  # fits the widened column (0005)
    # Reads give back the usable secret, through every path.
    assert await store.get(created.app_key) == rotated
    assert {r.app_key: r.app_secret for r in await store.list()} == {
        rotated.app_key: rotated.app_secret, other.app_key: other.app_secret}


@pytest.mark.anyio
async def test_plaintext_rows_work_until_encrypted(engines: EngineFactory) -> None:  # noqa: F811
    engine = engines()
    await migrate(engine)
    old = await AppStore(engine, box=None).create("from before the key")
    store = AppStore(engine, box=SecretBox(KEY_A))
    assert await store.get(old.app_key) == old  # plaintext still read as is
    new = await store.create("after")
    count = await store.encrypt_secrets()
    assert (count.sealed, count.resealed, count.already) == (1, 0, 1)
    stored = await raw_secrets(store)
    assert all(value.startswith(PREFIX) for value in stored.values())
    assert old.app_secret not in json.dumps(stored)
    assert await store.get(old.app_key) == old
    assert await store.get(new.app_key) == new
    again = await store.encrypt_secrets()  # idempotent
    assert (again.sealed, again.resealed, again.already) == (0, 0, 2)


@pytest.mark.anyio
async def test_wrong_or_missing_key_refuses(engines: EngineFactory) -> None:  # noqa: F811
    engine = engines()
    await migrate(engine)
    record = await AppStore(engine, box=SecretBox(KEY_A)).create("sealed")
    with pytest.raises(SecretKeyError, match="key id") as wrong:
        await AppStore(engine, box=SecretBox(KEY_B)).list()
    with pytest.raises(SecretKeyError, match="QQAVATAR_SECRET_KEY is not set"):
        await AppStore(engine, box=None).get(record.app_key)
    with pytest.raises(SecretKeyError):
        await AppStore(engine, box=SecretBox(KEY_B)).encrypt_secrets()
    for key in (KEY_A, KEY_B, record.app_secret):
        assert key not in str(wrong.value)


@pytest.mark.anyio
async def test_key_rotation_with_old_key(engines: EngineFactory) -> None:  # noqa: F811
    engine = engines()
    await migrate(engine)
    old_box, new_box = SecretBox(KEY_A), SecretBox(KEY_B)
    plain = await AppStore(engine, box=None).create("plaintext")  # before any key was set
    sealed = await AppStore(engine, box=old_box).create("sealed with A")
    store = AppStore(engine, box=new_box)
    count = await store.encrypt_secrets(old_box=old_box)
    assert (count.sealed, count.resealed, count.already) == (1, 1, 0)
    assert {r.app_key: r for r in await store.list()} == {
        sealed.app_key: sealed, plain.app_key: plain}
    assert all(v.startswith(f"{PREFIX}{new_box.key_id}:")
               for v in (await raw_secrets(store)).values())
    with pytest.raises(SecretKeyError):
        await AppStore(engine, box=old_box).list()


@pytest.mark.anyio
async def test_sealed_secret_moved_to_another_app_does_not_open(
        engines: EngineFactory) -> None:  # noqa: F811
    engine = engines()
    await migrate(engine)
    store = AppStore(engine, box=SecretBox(KEY_A))
    first, second = await store.create("first"), await store.create("second")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE apps SET app_secret = (SELECT app_secret FROM apps WHERE app_key = :a) "
                 "WHERE app_key = :b"), {"a": first.app_key, "b": second.app_key})
    with pytest.raises(SecretKeyError, match="damaged or was moved"):
        await store.get(second.app_key)


async def raw_link_keys(engine: Any) -> dict[str, bytes]:
    async with engine.connect() as connection:
        rows = (await connection.execute(
            text("SELECT app_key, link_key FROM app_link_keys"))).all()
    return {app_key: bytes(stored) for app_key, stored in rows}


@pytest.mark.anyio
async def test_link_keys_are_sealed_like_app_secrets(engines: EngineFactory) -> None:  # noqa: F811
    engine = engines()
    await migrate(engine)
    # A link key from before the key was set, then the key: the command seals it.
    plain_app = await AppStore(engine, box=None).create("before the key")
    plain_key = await LinkKeyStore(engine, box=None).get_or_create(plain_app.app_key)
    assert plain_key is not None
    box = SecretBox(KEY_A)
    assert (await AppStore(engine, box=box).encrypt_secrets()).sealed == 2  # secret + link key
    links = LinkKeyStore(engine, box=box)
    app = await AppStore(engine, box=box).create("after")
    made = await links.get_or_create(app.app_key)
    assert made is not None and await links.rotate(app.app_key)
    rotated = await links.get(app.app_key)
    assert rotated is not None and rotated.secret != made.secret
    raw = await raw_link_keys(engine)
    for app_key, key in ((plain_app.app_key, plain_key), (app.app_key, rotated)):
        assert raw[app_key].startswith(f"{PREFIX}{box.key_id}:".encode())
        assert key.secret not in raw[app_key]
        assert (await links.get(app_key) or plain_key).secret == key.secret  # opens again
    assert {k: v.secret for k, v in (await links.all()).items()} == {
        plain_app.app_key: plain_key.secret, app.app_key: rotated.secret}
    # Under another key, or none, a sealed link key does not open: the app has no links.
    assert await LinkKeyStore(engine, box=SecretBox(KEY_B)).get(app.app_key) is None
    assert await LinkKeyStore(engine, box=None).get(app.app_key) is None
    # Rotation of the operator's key moves link keys too.
    count = await AppStore(engine, box=SecretBox(KEY_B)).encrypt_secrets(old_box=box)
    assert (count.sealed, count.resealed) == (0, 4)
    again = await LinkKeyStore(engine, box=SecretBox(KEY_B)).get(app.app_key)
    assert again is not None and again.secret == rotated.secret


def test_data_dir_and_database_are_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = os.umask(0)
    try:
        async def run() -> None:
            engine = make_engine(f"sqlite:///{data / 'qqavatar.db'}")
            try:
                await migrate(engine)
                await AppStore(engine, box=None).create("x")  # the -wal file exists now
                modes = {path.name: stat.S_IMODE(path.stat().st_mode)
                         for path in [data, *data.iterdir()]}
                assert modes == {"data": 0o700, "qqavatar.db": 0o600,
                                 "qqavatar.db-wal": 0o600, "qqavatar.db-shm": 0o600}, modes
            finally:
                await engine.dispose()

        asyncio.run(run())
    finally:
        os.umask(old)


def test_database_url_is_shown_without_its_password() -> None:
    shown = mask_url("postgresql://qqavatar:s3cr%40t-pw@db.internal:5432/qqavatar")
    assert shown == "postgresql://qqavatar:****@db.internal:5432/qqavatar"
    assert mask_url("sqlite:////var/lib/qqavatar/qqavatar.db").endswith("qqavatar.db")
    assert "pw" not in mask_url("postgresql://u:pw@[::1/x")  # unreadable: nothing shown
    # A slip of the colon: no `scheme://host` part to find the password in, so none of it.
    assert "pw" not in mask_url("postgresql//u:pw@db/qqavatar")
    assert masked("database_url", "postgresql//u:pw@db/qqavatar") == "****"


def test_sqlite_widening_keeps_members_and_link_keys(tmp_path: Path) -> None:
    """0005 on SQLite must not copy-and-drop `apps`: that DROP would cascade to members."""
    url = f"sqlite:///{tmp_path / 'old.db'}"

    async def run() -> tuple[int, int, str]:
        engine = make_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade_to, ["0002", "0004"])
                await connection.execute(text(
                    "INSERT INTO apps (app_key, app_secret, name, sign_required, created_at, "
                    "updated_at) VALUES ('A', :s, 'old', 0, 1, 1)"), {"s": "x" * 64})
                await connection.execute(text(
                    "INSERT INTO members (uuid, app_key, username, username_key, password_hash, "
                    "created_at) VALUES ('U', 'A', 'm', 'm', 'h', 1)"))
                await connection.execute(text(
                    "INSERT INTO app_link_keys (app_key, link_key, created_at) "
                    "VALUES ('A', :k, 1)"), {"k": b"k" * 32})
            await migrate(engine)  # runs 0003 and 0005
            async with engine.connect() as connection:
                members = (await connection.execute(text("SELECT count(*) FROM members"))).scalar()
                links = (await connection.execute(
                    text("SELECT count(*) FROM app_link_keys"))).scalar()
                secret = (await connection.execute(text("SELECT app_secret FROM apps"))).scalar()
            return int(members or 0), int(links or 0), str(secret)
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == (1, 1, "x" * 64)
    with sqlite3.connect(tmp_path / "old.db") as raw:
        schema = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'apps'").fetchone()[0]
        assert "app_secret VARCHAR(255)" in schema
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _upgrade_to(connection: Any, revisions: list[str]) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    for revision in revisions:
        command.upgrade(config, revision)



# --- the key setting and the CLI -----------------------------------------------------------


def test_short_key_is_refused_without_showing_it() -> None:
    short = "k" + secrets.token_hex(8)
    with pytest.raises(ConfigError, match="at least 32 characters") as refused:
        Settings(secret_key=short)
    assert short not in str(refused.value)
    assert Settings(secret_key="").secret_key is None  # "" is unset


def test_encrypt_secrets_command(tmp_path: Path) -> None:
    """Apps made before the key was set: served as they are, sealed by the command."""
    database_url = f"sqlite:///{tmp_path / 'qqavatar.db'}"
    env = {"QQAVATAR_DATA_DIR": str(tmp_path), "QQAVATAR_DATABASE_URL": database_url}

    async def plaintext_app() -> str:
        engine = make_engine(database_url)
        try:
            await migrate(engine)
            return (await AppStore(engine, box=None).create("before")).app_secret
        finally:
            await engine.dispose()

    async def read_with(key: str) -> list[str]:
        engine = make_engine(database_url)
        try:
            return [r.app_secret for r in await AppStore(engine, box=SecretBox(key)).list()]
        finally:
            await engine.dispose()

    secret = asyncio.run(plaintext_app())
    keyed = {**env, "QQAVATAR_SECRET_KEY": KEY_A}
    done = _cli(keyed, "app", "encrypt-secrets", "--json")
    assert json.loads(done.stdout) == {"sealed": 1, "resealed": 0, "already": 0}
    with sqlite3.connect(tmp_path / "qqavatar.db") as raw:
        assert secret not in str(raw.execute("SELECT app_secret FROM apps").fetchall())
    # Rotation: the new key, the old one on stdin (not in argv).
    rotated = _cli({**env, "QQAVATAR_SECRET_KEY": KEY_B}, "app", "encrypt-secrets",
                   "--old-key", "-", "--json", stdin=KEY_A + "\n")
    assert json.loads(rotated.stdout) == {"sealed": 0, "resealed": 1, "already": 0}
    assert asyncio.run(read_with(KEY_B)) == [secret]
    with pytest.raises(SecretKeyError):
        asyncio.run(read_with(KEY_A))


def _cli(env: dict[str, str], *args: str, stdin: str | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    import os

    done = subprocess.run([sys.executable, "-m", "qqavatar", *args], env={**os.environ, **env},
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


# --- nothing secret in logs or answers ---------------------------------------------------------


ADMIN_TOKEN = secrets.token_urlsafe(24)
PASSWORD = "Pa55-" + secrets.token_hex(6)



# --- a real server with a key, on PostgreSQL through a relay that can be cut -----------------

ADMIN_TOKEN = secrets.token_urlsafe(24)
PASSWORD = "Pa55-" + secrets.token_hex(6)


def _md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()


def seed_app(database_url: str, key: str, *, sign_required: bool = True) -> dict[str, Any]:
    """An app made in-process before a server starts (a CLI call costs seconds of CPU)."""

    async def run() -> dict[str, Any]:
        engine = make_engine(database_url)
        try:
            await migrate(engine)
            store = AppStore(engine, box=SecretBox(key))
            return (await store.create("seeded", sign_required=sign_required)).public_dict()
        finally:
            await engine.dispose()

    return asyncio.run(run())


@dataclass
class SealedServer:
    server: RunningServer
    app: dict[str, Any]
    database_url: str       # direct, not through the relay
    relay: TcpRelay
    answers: list[str] = field(default_factory=list)  # every answer body and headers seen
    tokens: list[str] = field(default_factory=list)   # session tokens handed out


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory, fake_qlogo: Any) -> Iterator[SealedServer]:
    """One server for this module: key set, debug logs, access log, admin token."""
    with fresh_database() as url:
        database_url = as_env(url)
        relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
        through = url.set(host="127.0.0.1", port=relay.port)
        try:
            app = seed_app(database_url, KEY_A)
            server = RunningServer(tmp_path_factory.mktemp("sealed"), fake_qlogo.url, {
                "QQAVATAR_DATABASE_URL": as_env(through),
                "QQAVATAR_SECRET_KEY": KEY_A, "QQAVATAR_ADMIN_TOKEN": ADMIN_TOKEN,
                "QQAVATAR_LOG_LEVEL": "debug", "QQAVATAR_ACCESS_LOG": "1",
                "QQAVATAR_LOG_FORMAT": "json", "QQAVATAR_READY_TIMEOUT": "1"})
            yield SealedServer(server, app, database_url, relay)
            server.stop()
        finally:
            relay.close()


@pytest.mark.postgres
def test_server_signs_with_sealed_secret(sealed: SealedServer) -> None:
    server, app = sealed.server, sealed.app

    async def stored() -> str:
        engine = make_engine(sealed.database_url)
        try:
            async with engine.connect() as connection:
                return str((await connection.execute(
                    text("SELECT app_secret FROM apps WHERE app_key = :k"),
                    {"k": app["app_key"]})).scalar_one())
        finally:
            await engine.dispose()

    raw = asyncio.run(stored())
    assert raw.startswith(PREFIX) and app["app_secret"] not in raw
    params = {"s": "App.QQ.UserImage", "app_key": app["app_key"], "qq": "10001", "output": "0"}
    good = server.client.get("/", params={**params, "sign": compute_sign(
        params, app["app_secret"])})
    assert good.json()["ret"] == 200, good.text
    assert_auth(good, app["app_secret"])
    bad = server.client.get("/", params={**params, "sign": "0" * 32})
    assert bad.json()["ret"] == 409  # sign mismatch
    sealed.answers += [good.text, bad.text]


@pytest.mark.postgres
def test_wrong_key_stops_the_server(sealed: SealedServer) -> None:
    env = {**sealed.server.env, "QQAVATAR_DATABASE_URL": sealed.database_url}
    # The missing key is the same path (test_wrong_or_missing_key_refuses); one start suffices.
    for key, says in ((KEY_B, "key id"),):
        done = subprocess.run(
            [sys.executable, "-m", "qqavatar", "serve", "--port", str(free_port())],
            env={**env, "QQAVATAR_SECRET_KEY": key}, capture_output=True, text=True,
            timeout=60, check=False)
        assert done.returncode == 2, (key == KEY_B, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], done.stderr
        assert KEY_A not in done.stderr + done.stdout and KEY_B not in done.stderr


@pytest.mark.postgres
def test_no_secret_in_logs_or_answers(sealed: SealedServer) -> None:
    server, app = sealed.server, sealed.app
    _drive(server, app, sealed)
    sealed.relay.cut()  # the database goes away: every path that needs it errs
    try:
        _drive(server, app, sealed, database_up=False)
    finally:
        sealed.relay.restore()
    log = server.output()
    assert '"level' in log, log[:500]  # JSON lines
    # The outage was seen by the callers and logged (errors and warnings, some with
    # tracebacks, where SQL parameters would show).
    assert any("database unavailable" in answer for answer in sealed.answers)
    assert any('"database":"error' in answer for answer in sealed.answers)
    assert '"level": "warning"' in log or '"level": "error"' in log
    watched = {"app_secret": app["app_secret"], "password": PASSWORD,
               "password md5": _md5(PASSWORD), "admin token": ADMIN_TOKEN, "secret key": KEY_A,
               **{f"session token {i}": token for i, token in enumerate(sealed.tokens)}}
    assert sealed.tokens and len(sealed.answers) > 20
    for label, secret in watched.items():
        assert secret not in log, f"{label} in the server log"
        for answer in sealed.answers:
            assert secret not in answer, f"{label} in an answer: {answer[:300]}"


def _drive(server: RunningServer, app: dict[str, Any], sealed: SealedServer, *,
           database_up: bool = True) -> None:
    """Every path that handles a secret; answers and tokens go into `sealed`."""
    client, answers = server.client, sealed.answers

    def call(method: str, path: str, *, gives_token: bool = False,
             **kwargs: Any) -> httpx.Response:
        response = client.request(method, path, **kwargs)
        if not gives_token:  # a successful login's answer is where the token belongs
            answers.append(response.text + json.dumps(dict(response.headers)))
        return response

    def api(service: str, **params: str) -> dict[str, Any]:
        signed = {"s": service, "app_key": app["app_key"], **params}
        response = call("POST", "/", gives_token=service == "App.User.Login" and database_up,
                        data={**signed, "sign": compute_sign(signed, app["app_secret"])})
        reply: dict[str, Any] = response.json()
        return reply

    avatar = {"s": "App.QQ.UserImage", "app_key": app["app_key"], "qq": "10001", "output": "0"}
    call("GET", "/", params={**avatar, "sign": compute_sign(avatar, app["app_secret"])})
    call("GET", "/", params={**avatar, "sign": _md5("forged")})          # bad sign
    call("GET", "/", params={**avatar, "app_secret": app["app_secret"]})  # secret sent as a param
    user = "member_" + secrets.token_hex(4)
    api("App.User.Register", username=user, password=_md5(PASSWORD))
    api("App.User.Login", username=user, password=_md5("wrong" + PASSWORD))
    login = api("App.User.Login", username=user, password=_md5(PASSWORD))
    tokens = [login["data"]["token"]] if database_up else []
    sealed.tokens += tokens
    if database_up:
        assert login["data"]["err_code"] == 0, login
        uuid = login["data"]["uuid"]
        api("App.User.Check", uuid=uuid, token=tokens[0])
        api("App.User.Logout", uuid=uuid, token=tokens[0])
        api("App.User.Check", uuid=uuid, token=tokens[0])  # a revoked token
    else:
        reply = api("App.User.Register", username=user + "x", password=_md5(PASSWORD))
        assert reply["ret"] != 200 or reply["data"]["err_code"] != 0, reply
    admin = httpx.Client(base_url=server.url, timeout=10.0)
    try:
        for token in ("wrong-" + ADMIN_TOKEN, ADMIN_TOKEN):
            signed_in = admin.post("/admin/login", data={"token": token})
            answers.append(signed_in.text + json.dumps(dict(signed_in.headers)))
        for path in ("/admin", "/admin/api/apps", "/readyz", "/metrics"):
            page = admin.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            answers.append(page.text + json.dumps(dict(page.headers)))
    finally:
        admin.close()
