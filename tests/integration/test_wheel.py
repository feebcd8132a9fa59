"""The built package works on its own: the wheel, installed into a fresh virtualenv with
its dependencies and without the checkout on the path, serves `/`, `/docs`, the
dashboard's sign-in page and an avatar from `qqavatar serve --demo`.

A template, static file or migration left out of the package data fails here, while
the rest of the suite (which runs the checkout) would not notice. Dependencies come
from pip's own configuration (index, find-links, cache), as an operator's install would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server_fixture import database_for, free_port, wait_until_listening

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "qqavatar"
TOKEN = "wheel-test-admin-token-0123456789abcdef"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    work: Path  # a directory outside the checkout, the cwd of everything run

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def env(self, **settings: str) -> dict[str, str]:
        """The caller's environment without PYTHONPATH or any QQAVATAR_* setting."""
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("QQAVATAR_") and name not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return {**env, **settings}


def run(*command: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = work / "source"
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(work / "dist"),
        str(source), cwd=work)
    (wheel,) = (work / "dist").glob("qqavatar-*.whl")
    venv = work / "venv"
    # No pip of its own (ensurepip costs seconds): this interpreter's pip installs into it.
    run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=work)
    run(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
        "--quiet", str(wheel), cwd=work)
    return Installed(wheel, venv, work)


def test_the_wheel_holds_every_data_file_of_the_package(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    data_files = {str(path.relative_to(PACKAGE.parent)) for path in PACKAGE.rglob("*")
                  if path.is_file() and path.suffix not in (".py", ".pyc")
                  and "__pycache__" not in path.parts}
    assert data_files, "no data files found: the package layout moved"
    assert data_files <= names, sorted(data_files - names)
    assert any(name.startswith("qqavatar/store/migrations/versions/") for name in names)


def test_it_runs_from_the_venv_not_the_checkout(installed: Installed) -> None:
    done = run(installed.bin("python"), "-c", "import qqavatar; print(qqavatar.__file__)",
               cwd=installed.work, env=installed.env())
    location = Path(done.stdout.strip())
    assert location.is_relative_to(installed.venv), location
    assert not location.is_relative_to(REPO)


@pytest.fixture(scope="module")
def served(installed: Installed) -> Iterator[tuple[httpx.Client, str]]:
    data_dir = installed.work / "data"
    settings = {"QQAVATAR_DATA_DIR": str(data_dir), "QQAVATAR_ADMIN_TOKEN": TOKEN}
    database = database_for(data_dir)  # the suite's PostgreSQL pass: a database of its own
    if database is not None:
        settings["QQAVATAR_DATABASE_URL"] = database
    env = installed.env(**settings)
    port = free_port()
    log = (installed.work / "serve.log").open("wb")
    proc = subprocess.Popen([installed.bin("qqavatar"), "serve", "--demo", "--port", str(port)],
                            cwd=installed.work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_listening(url + "/", proc)
        listed = run(installed.bin("qqavatar"), "app", "list", "--json", cwd=installed.work,
                     env=env)
        app_key = json.loads(listed.stdout)[0]["app_key"]
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, app_key
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_root_answers_the_site_index(served: tuple[httpx.Client, str]) -> None:
    client, _ = served
    reply = client.get("/")
    assert reply.status_code == 200
    assert reply.json()["data"]["name"] == "qqavatar"


def test_docs_and_their_static_files(served: tuple[httpx.Client, str]) -> None:
    client, _ = served
    page = client.get("/docs")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "App.QQ.UserImage" in page.text
    stylesheet = client.get("/docs/static/docs.css")
    assert stylesheet.status_code == 200 and stylesheet.text.strip()


def test_admin_sign_in_page_and_its_stylesheet(served: tuple[httpx.Client, str]) -> None:
    client, _ = served
    page = client.get("/admin", follow_redirects=True)
    assert page.status_code == 200, page.text
    assert "qqavatar admin" in page.text and 'name="token"' in page.text
    stylesheet = client.get("/admin/static/admin.css")
    assert stylesheet.status_code == 200 and stylesheet.text.strip()


def test_an_avatar_from_the_demo_upstream(served: tuple[httpx.Client, str]) -> None:
    client, app_key = served
    reply = client.get("/", params={"s": "App.QQ.UserImage", "app_key": app_key,
                                    "qq": "376741929"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/png"
    assert reply.content.startswith(b"\x89PNG\r\n\x1a\n")
