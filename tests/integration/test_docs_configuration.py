"""docs/configuration.md stays true: its table has one row per setting, and its example file
and command do what the page says."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from qqavatar.settings import Settings
from tests.docpages import DOCS, command_lines, fenced_blocks, section
from tests.integration.test_config_cli import qqavatar

PAGE = DOCS / "configuration.md"
_ROW = re.compile(r"^\| `(QQAVATAR_[A-Z0-9_]+)` \|", re.MULTILINE)


def test_the_table_has_a_row_for_every_setting_and_no_other() -> None:
    rows = _ROW.findall(section(PAGE, "Settings"))
    assert len(rows) == len(set(rows)), "a setting has two rows"
    fields = {f"QQAVATAR_{name.upper()}" for name in Settings.model_fields}
    assert sorted(fields - set(rows)) == [], "settings the table leaves out"
    assert sorted(set(rows) - fields) == [], "rows that name no setting"


def test_the_example_file_is_read_as_the_page_says(tmp_path: Path) -> None:
    where = section(PAGE, "Where settings come from")
    (example,) = fenced_blocks(where, "toml")
    (tmp_path / "qqavatar.toml").write_text(example)
    keys = set(tomllib.loads(example))
    assert keys <= set(Settings.model_fields) and len(keys) >= 3

    (command,) = [line for line in command_lines(where) if line.endswith(" config")]
    argv = shlex.split(command)
    assert argv[0] == "qqavatar"
    done = qqavatar(*argv[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"# qqavatar configuration; file: {tmp_path / 'qqavatar.toml'}")
    sources = {}
    for line in done.stdout.splitlines()[1:]:
        name = line.removeprefix("# ").split()[0]
        sources[name] = line.rsplit("#", 1)[1].strip()
    assert {key: sources[key] for key in keys} == dict.fromkeys(keys, "file")
    assert re.search(r"^cache_max_bytes += 67108864 ", done.stdout, re.MULTILINE)
    assert "postgresql://qqavatar@127.0.0.1/qqavatar" in done.stdout
