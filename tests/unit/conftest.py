"""Store tests run once per database: SQLite always, PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qqavatar.store.testing import EngineFactory, database_urls, isolated_database


def _param(url: str) -> object:
    backend = url.split(":", 1)[0].split("+", 1)[0]
    marks = [] if backend == "sqlite" else [pytest.mark.postgres]
    return pytest.param(url, id=backend, marks=marks)


@pytest.fixture(params=[_param(url) for url in database_urls()])
async def engines(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """A factory of engines that all see one fresh, empty database."""
    async with isolated_database(request.param, tmp_dir=tmp_path) as factory:
        yield factory
