"""Schemathesis against /openapi.json on a live server (real app, fake qlogo).

Asserts no 5xx and that every answer matches the document: status codes, content
types, headers and schemas (JSON, and through the hooks JSONP and images), plus every
`_auth`. Bounded: coverage values in positive mode, a few fuzzed examples per operation
in both modes. The seed is fixed so CI is repeatable; QQAVATAR_SCHEMATHESIS_SEED picks
another, QQAVATAR_SCHEMATHESIS_EXAMPLES more examples, for a longer hunt by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server_fixture import RunningServer

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "auth_holds",              # tests/integration/schemathesis_hooks.py
    "EveryOperationSucceeds",  # idem
))
# The coverage phase walks every boundary of every parameter: positive values only keep it
# bounded (the fuzzing phase sends negative ones); unexpected methods only meet the 405.
# No crash cache: every run is the same run (and leaves no `.schemathesis/` behind).
CONFIG = """
[cache]
enabled = false
[phases.coverage]
unexpected-methods = []
[phases.coverage.generation]
mode = "positive"
"""


def test_schemathesis_finds_nothing(server: RunningServer, app: dict[str, Any],
                                    tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
        "QQAVATAR_ST_APP_KEY": app["app_key"],
        "QQAVATAR_ST_APP_SECRET": app["app_secret"],
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
        "NO_COLOR": "1",
    }
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
        "run", server.url + "/openapi.json", "--url", server.url,
        "--phases", "examples,coverage,fuzzing",
        "--checks", CHECKS,
        "--mode", "all",
        "--max-examples", os.environ.get("QQAVATAR_SCHEMATHESIS_EXAMPLES", "8"),
        "--seed", os.environ.get("QQAVATAR_SCHEMATHESIS_SEED", "20261128"),
        "--workers", "1",  # hypothesis' lambda introspection is not thread-safe on 3.11
        "--report", "har", "--report-har-path", str(tmp_path / "schemathesis.har"),
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    report = done.stdout[-12000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "No issues found" in done.stdout, report
    assert "Tested: " in done.stdout, report
