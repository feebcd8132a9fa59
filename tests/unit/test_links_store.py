"""Link keys in the database and in memory, on SQLite and (if configured) PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qqavatar.links.registry import LinkRegistry
from qqavatar.links.tokens import LinkTarget
from qqavatar.store.apps import AppStore
from qqavatar.store.db import migrate
from qqavatar.store.link_keys import LinkKeyStore
from qqavatar.store.testing import EngineFactory

pytestmark = pytest.mark.anyio

TARGET = LinkTarget.of("user", {"qq": "376741929", "size": "100"})


@pytest.fixture
async def engines(engines: EngineFactory) -> EngineFactory:
    """The shared fresh database (tests/unit/conftest.py), migrated."""
    await migrate(engines())
    return engines


class FakeClock:
    """Monotonic time that moves only when told to (no sleeping in tests)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_get_or_create_makes_one_key(engines: EngineFactory) -> None:
    apps, keys = AppStore(engines()), LinkKeyStore(engines())
    app = await apps.create("blog")
    before = await apps.version()
    first = await keys.get_or_create(app.app_key)
    assert first is not None and len(first.secret) == 32
    assert await apps.version() == before + 1  # workers reload and learn the new key
    again = await keys.get_or_create(app.app_key)
    assert again is not None and again.secret == first.secret
    assert await apps.version() == before + 1
    assert await keys.get_or_create("0" * 32) is None  # no such app


async def test_rotate_replaces_the_key(engines: EngineFactory) -> None:
    apps, keys = AppStore(engines()), LinkKeyStore(engines())
    app = await apps.create("blog")
    old = await keys.get_or_create(app.app_key)
    before = await apps.version()
    assert await keys.rotate(app.app_key) is True
    new = await keys.get(app.app_key)
    assert old is not None and new is not None and new.secret != old.secret
    assert await apps.version() == before + 1
    assert await keys.rotate("0" * 32) is False


async def test_rotate_without_a_key_yet_makes_one(engines: EngineFactory) -> None:
    apps, keys = AppStore(engines()), LinkKeyStore(engines())
    app = await apps.create("blog")
    assert await keys.rotate(app.app_key) is True
    assert await keys.get(app.app_key) is not None


async def test_deleting_the_app_deletes_its_key(engines: EngineFactory) -> None:
    apps, keys = AppStore(engines()), LinkKeyStore(engines())
    app, kept = await apps.create("gone"), await apps.create("kept")
    await keys.get_or_create(app.app_key)
    await keys.get_or_create(kept.app_key)
    assert await apps.delete(app.app_key)
    assert await keys.get(app.app_key) is None  # ON DELETE CASCADE
    assert set(await keys.all()) == {kept.app_key}


async def test_all_gives_every_app_a_key(engines: EngineFactory) -> None:
    apps, keys = AppStore(engines()), LinkKeyStore(engines())
    made = {(await apps.create(f"app{i}")).app_key for i in range(3)}
    loaded = await keys.all()
    assert set(loaded) == made
    assert {key.secret for key in (await keys.all()).values()} == \
        {key.secret for key in loaded.values()}  # made once, then kept


async def test_registry_seals_and_opens(engines: EngineFactory) -> None:
    apps = AppStore(engines())
    first, second = await apps.create("one"), await apps.create("two")
    registry = LinkRegistry(LinkKeyStore(engines()))
    await registry.load()
    token = await registry.seal(first.app_key, TARGET)
    assert token is not None
    assert await registry.open(token) == (first.app_key, TARGET)
    other = await registry.seal(second.app_key, TARGET)
    assert other is not None and other != token  # two apps, two links
    assert await registry.open(other) == (second.app_key, TARGET)
    assert await registry.seal("0" * 32, TARGET) is None


async def test_registry_follows_rotation_and_deletion(engines: EngineFactory) -> None:
    apps, keys = AppStore(engines()), LinkKeyStore(engines())
    app = await apps.create("blog")
    registry = LinkRegistry(keys)
    await registry.load()
    token = await registry.seal(app.app_key, TARGET)
    assert token is not None
    await keys.rotate(app.app_key)
    await registry.load()  # what the poller does when apps_version moves
    assert await registry.open(token) is None
    fresh = await registry.seal(app.app_key, TARGET)
    assert fresh is not None and fresh != token
    assert await registry.open(fresh) == (app.app_key, TARGET)
    await apps.delete(app.app_key)
    await registry.load()
    assert await registry.open(fresh) is None


async def test_a_key_made_by_another_worker_is_found_on_a_miss(engines: EngineFactory) -> None:
    apps = AppStore(engines())
    clock = FakeClock()
    mine = LinkRegistry(LinkKeyStore(engines()), clock=clock)
    theirs = LinkRegistry(LinkKeyStore(engines()))
    await mine.load()
    app = await apps.create("new")  # after `mine` loaded: it does not know this app's key
    token = await theirs.seal(app.app_key, TARGET)
    assert token is not None
    assert await mine.open(token) is None  # just loaded: a miss does not reload yet
    clock.now += 1.0
    assert await mine.open(token) == (app.app_key, TARGET)


async def test_misses_reload_at_most_once_per_interval(engines: EngineFactory) -> None:
    apps = AppStore(engines())
    app = await apps.create("blog")
    clock = FakeClock()
    registry = LinkRegistry(LinkKeyStore(engines()), clock=clock)
    await registry.load()
    token = await registry.seal(app.app_key, TARGET)
    assert token is not None
    loads = 0
    original = registry.load

    async def counting_load() -> None:
        nonlocal loads
        loads += 1
        await original()

    registry.load = counting_load  # type: ignore[method-assign]
    forged = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    for _ in range(5):
        assert await registry.open(forged) is None
    assert loads == 0
    clock.now += 1.0
    for _ in range(5):
        assert await registry.open(forged) is None
    assert loads == 1


@pytest.mark.parametrize("module", ["qqavatar.store.link_keys", "qqavatar.links.registry"])
def test_each_side_imports_first_in_a_fresh_process(module: str) -> None:
    # The store takes links.tokens and the registry takes the store: whichever a process
    # loads first, neither finds the other half-loaded.
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
