"""The servers under test, started side by side: qqavatar, the floor, nginx and Flask.

All of them get the same worker count and run pinned to the server core; the fake
qlogo and wrk share the other core. Every target answers the same scenario paths
(`Target.paths`), with the same bytes where the scenario allows it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

from qqavatar.protocol.sign import compute_sign

from . import mix as mixes
from . import nginx
from .procs import Proc, free_port
from .refs.floor import mix_route
from .tools import find_nginx

REPO = Path(__file__).resolve().parent.parent
TARGETS = ("qqavatar", "floor", "nginx", "flask")
HIT_NUMBER = "123456781"  # a JPEG avatar in the fake
SERVER_HEADERS = frozenset({"server", "date", "content-length", "transfer-encoding",
                            "connection", "keep-alive"})


@dataclass
class Target:
    name: str
    label: str
    url: str                 # http://127.0.0.1:port
    proc: Proc
    paths: dict[str, str] = field(default_factory=dict)  # hit scenario → path
    miss: tuple[str, str] | None = None  # (path before the number, after it), size 40


@dataclass
class Fake:
    proc: Proc
    url: str

    def control(self, path: str, body: dict[str, object] | None = None) -> object:
        if body is None:
            return httpx.get(self.url + path, timeout=10).json()
        return httpx.post(self.url + path, json=body, timeout=10).json()

    def requests_for(self, number: str, size: int) -> int:
        stats = self.control("/_fake/stats")
        assert isinstance(stats, dict)
        return int(stats["by_key"].get(f"user:{number}:{size}", 0))


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any QQAVATAR_ (or metrics) setting of the caller's."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("QQAVATAR_", "PROMETHEUS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def start_fake(work: Path, cpu: int | None) -> Fake:
    port = free_port()
    proc = Proc("fakeqlogo", [sys.executable, "-m", "qqavatar.fakeqlogo", "--port", str(port)],
                log_dir=work, env=clean_env(), cpu=cpu)
    return Fake(proc, f"http://127.0.0.1:{port}")


def start_qqavatar(work: Path, name: str, fake: Fake, *, server: str, workers: int,
                   cpu: int | None, again: bool = False, **settings: str) -> tuple[Proc, str]:
    """`again`: on the data dir of an earlier start of the same name (a restart)."""
    port = free_port()
    data = work / name
    data.mkdir(exist_ok=again)
    env = clean_env(
        QQAVATAR_DATA_DIR=str(data),
        QQAVATAR_UPSTREAM_USER_URL=fake.url + "/g?b=qq&nk={qq}&s={size}",
        QQAVATAR_UPSTREAM_GROUP_URL=fake.url + "/gh/{group}/{group}/{size}/",
        QQAVATAR_LOG_FORMAT="text",
        **{f"QQAVATAR_{key.upper()}": value for key, value in settings.items()})
    proc = Proc(name, [sys.executable, "-m", "qqavatar", "serve", "--port", str(port),
                       "--workers", str(workers), "--server", server],
                log_dir=work, env=env, cpu=cpu)
    return proc, f"http://127.0.0.1:{port}"


def first_app(proc: Proc, timeout: float = 30.0) -> tuple[str, str]:
    """The app_key `qqavatar serve` prints when it creates the first app, and its secret
    (which it prints only to a terminal: asked of `qqavatar app show`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        key = re.search(r"app_key\s+([0-9A-F]{32})", proc.output(tail=100_000))
        if key:
            shown = subprocess.run([sys.executable, "-m", "qqavatar", "app", "show", key[1],
                                    "--json"], env=proc.env, capture_output=True, text=True,
                                   timeout=60, check=True)
            return key[1], str(json.loads(shown.stdout)["app_secret"])
        if not proc.alive():
            break
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} printed no first app:\n{proc.output()}")


def api_paths(app_key: str, secret: str, number: str) -> dict[str, str]:
    """The hit scenarios' paths on qqavatar's API (and the Flask reference's)."""
    def path(**params: str) -> str:
        base = {"s": "App.QQ.UserImage", "app_key": app_key, "qq": number}
        return "/?" + urlencode(base | params)

    signed = {"s": "App.QQ.UserImage", "app_key": app_key, "qq": number, "size": "40"}
    signed["sign"] = compute_sign(signed, secret)
    return {
        "image40": path(size="40"),
        "image640": path(size="640"),
        "json640": path(size="640", output="0"),
        "signed40": "/?" + urlencode(signed),
    }


def mix_answer_paths(app_key: str, number: str) -> dict[str, str]:
    """One mix call per size and output, named as the floor looks its answer up
    (`mix_route`)."""
    path = mixes.qqavatar_path(app_key)
    calls = [mixes.Call(number, size, json) for size in sorted(set(mixes.SIZES))
             for json in (False, True)]
    return {mix_route(path(call).partition("?")[2]).removeprefix("/"): path(call)
            for call in calls}


def record(url: str, paths: dict[str, str]) -> dict[str, dict[str, object]]:
    """Each path's answer (status, headers, body), checked to be a success."""
    answers: dict[str, dict[str, object]] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for scenario, path in paths.items():
            reply = client.get(path)
            reply = client.get(path)  # the second one is the cached hit
            if reply.status_code != 200:
                raise RuntimeError(f"{url}{path} answered {reply.status_code}: {reply.text[:300]}")
            if scenario.startswith("json") and b'"err_code":0' not in reply.content:
                raise RuntimeError(f"{url}{path} answered {reply.text[:300]}")
            answers[scenario] = {
                "status": reply.status_code,
                "headers": [[name, value] for name, value in reply.headers.items()
                            if name.lower() not in SERVER_HEADERS],
                "body": base64.b64encode(reply.content).decode("ascii"),
            }
    return answers


def floor_answers_path(work: Path) -> Path:
    return work / "floor-answers.json"


def write_floor_answers(work: Path, answers: dict[str, dict[str, object]]) -> None:
    floor_answers_path(work).write_text(
        json.dumps({"/" + name: item for name, item in answers.items()}))


def start_floor(work: Path, *, server: str, workers: int, cpu: int | None) -> tuple[Proc, str]:
    """The floor; it answers once `write_floor_answers` has run (it may start before)."""
    port = free_port()
    proc = Proc("floor", [sys.executable, "-m", "bench.refs.floor", "--server", server,
                          "--port", str(port), "--workers", str(workers),
                          "--answers", str(floor_answers_path(work))],
                log_dir=work, env=clean_env(), cpu=cpu, cwd=REPO)
    return proc, f"http://127.0.0.1:{port}"


def start_nginx(work: Path, fake: Fake, *, workers: int, cpu: int | None) -> tuple[Proc, str]:
    binary = find_nginx()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    root = work / "nginx"
    port = free_port()
    nginx.write_config(root, port=port, upstream=fake.url.removeprefix("http://"),
                       workers=workers)
    return Proc("nginx", nginx.command(binary, root), log_dir=work, cpu=cpu), \
        f"http://127.0.0.1:{port}"


def flask_apps_path(work: Path) -> Path:
    return work / "flask-apps.json"


def start_flask(work: Path, fake: Fake, *, workers: int, cpu: int | None) -> tuple[Proc, str]:
    """The Flask reference; it knows the app once its apps file is written (may be later)."""
    port = free_port()
    env = clean_env(BENCH_UPSTREAM_USER_URL=fake.url + "/g?b=qq&nk={qq}&s={size}",
                    BENCH_APPS_FILE=str(flask_apps_path(work)))
    # gthread: keep-alive and concurrent upstream waits, as a production Flask deploy runs.
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "8",
               "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}",
               "--log-level", "warning", "bench.refs.flask_app:app"]
    return Proc("flask", command, log_dir=work, env=env, cpu=cpu, cwd=REPO), \
        f"http://127.0.0.1:{port}"


def nginx_paths(number: str) -> dict[str, str]:
    return {
        "image40": f"/g?b=qq&nk={number}&s=40",
        "image640": f"/g?b=qq&nk={number}&s=640",
        "json640": nginx.STATIC_JSON,
        "signed40": f"/g?b=qq&nk={number}&s=40",  # nginx has no signatures: its plain hit
    }


def warm(url: str, paths: dict[str, str], expect_header: tuple[str, str] | None = None) -> None:
    """Fill the target's cache; with `expect_header`, check that the last answer was a hit."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for path in paths.values():
            reply = client.get(path)
            for _ in range(2):
                reply = client.get(path)
            if reply.status_code != 200:
                raise RuntimeError(f"{url}{path} answered {reply.status_code}")
            if expect_header is not None:
                name, wanted = expect_header
                if reply.headers.get(name) != wanted:
                    raise RuntimeError(f"{url}{path}: {name}={reply.headers.get(name)}, "
                                       f"not {wanted}")
