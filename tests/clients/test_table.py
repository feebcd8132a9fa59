"""docs/clients.md and tests/clients/ stay in step: every row of the table names a test
module that exists, and every client test module has its row."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
TABLE = HERE.parent.parent / "docs" / "clients.md"


def test_every_row_has_its_test_and_every_test_its_row() -> None:
    rows = [line for line in TABLE.read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| client", "|---"))]
    named = {name for row in rows for name in re.findall(r"`(test_\w+\.py)`", row.split("|")[-2])}
    assert all(re.search(r"`(test_\w+\.py)`", row.split("|")[-2]) for row in rows), rows
    modules = {path.name for path in HERE.glob("test_*.py")} - {Path(__file__).name}
    assert named == modules
    for row in rows:  # a repository and path read, at a full commit
        assert re.search(r"@ `[0-9a-f]{40}`", row) or "not a package" in row, row
