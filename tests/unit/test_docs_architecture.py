"""docs/architecture.md's file map stays true, and the README stays short (issue 16).

The map names every module by its path under `src/qqavatar/` in backticks
(`avatars/cache.py`, a package's face as `avatars/__init__.py`); the migrations in
`store/migrations/versions/` are named as a folder, not one by one. A path in backticks that
starts with `tests/`, `bench/` or `scripts/` is read from the repository's root instead.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "qqavatar"
PAGE = ROOT / "docs" / "architecture.md"
MIGRATIONS = Path("store/migrations/versions")
README_MAX_LINES = 250

_NAMED = re.compile(r"`([A-Za-z0-9_./-]+\.py)`")
_FROM_ROOT = ("tests/", "bench/", "scripts/")


def modules() -> set[str]:
    """Every module of the package as a path under src/qqavatar/, but the migrations."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if MIGRATIONS not in relative.parents:
            found.add(relative.as_posix())
    return found


def named(text: str) -> set[str]:
    """The package paths the page names (paths from the root are checked on their own)."""
    return {name for name in _NAMED.findall(text) if not name.startswith(_FROM_ROOT)}


def test_every_module_is_on_the_map() -> None:
    missing = sorted(modules() - named(PAGE.read_text(encoding="utf-8")))
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_every_module_on_the_map_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    gone = sorted(name for name in named(text) if not (PACKAGE / name).is_file())
    gone += sorted(name for name in _NAMED.findall(text)
                   if name.startswith(_FROM_ROOT) and not (ROOT / name).is_file())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def test_the_map_check_sees_a_missing_and_a_made_up_module() -> None:
    """The two checks above can fail: a page without one module, or with an invented one."""
    some = sorted(modules())
    page = "\n".join(f"- `{name}` — …" for name in some[1:]) + "\n- `nowhere/made_up.py` — …"
    assert modules() - named(page) == {some[0]}
    assert not (PACKAGE / "nowhere/made_up.py").exists() and "nowhere/made_up.py" in named(page)


def test_migrations_are_left_to_their_folder() -> None:
    assert (PACKAGE / MIGRATIONS).is_dir()
    assert not any(name.startswith(MIGRATIONS.as_posix()) for name in modules())
    assert "store/migrations/env.py" in modules()


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move sections to docs/"
