"""What the harness needs on the machine, and what the report says about the machine."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

# (command, Debian package) the harness runs.
COMMANDS = (("wrk", "wrk"), ("nginx", "nginx"), ("taskset", "util-linux"))
# Python modules of the references and the chart: the `bench` extra of pyproject.toml.
MODULES = (("granian", "granian"), ("flask", "flask"), ("flask_caching", "flask-caching"),
           ("gunicorn", "gunicorn"), ("requests", "requests"), ("matplotlib", "matplotlib"))
# Versions shown in the report.
PACKAGES = ("granian", "uvicorn", "uvloop", "httptools", "starlette", "flask", "flask-caching",
            "gunicorn", "requests", "httpx")


@dataclass(frozen=True)
class Missing:
    what: str
    fix: str


def find_nginx() -> str | None:
    # Debian installs it in /usr/sbin, which is not on every user's PATH.
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(path, os.X_OK)), None)


def missing_tools() -> list[Missing]:
    """Everything the harness would need and cannot find, with how to get it."""
    missing = []
    for command, package in COMMANDS:
        found = find_nginx() if command == "nginx" else shutil.which(command)
        if found is None:
            missing.append(Missing(f"`{command}` (command)",
                                   f"apt-get install {package}   # Debian/Ubuntu package"))
    absent = [package for module, package in MODULES if importlib.util.find_spec(module) is None]
    if absent:
        missing.append(Missing(
            "Python packages " + ", ".join(absent),
            f"{sys.executable} -m pip install -e '.[bench]'   # the bench extra of pyproject.toml"))
    return missing


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine_info() -> dict[str, str]:
    nginx = find_nginx()
    wrk = _first_line(["wrk", "--version"])
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "kernel": f"{platform.system()} {platform.release()}",
        "load average at start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "python": platform.python_version(),
        "nginx": _first_line([nginx, "-v"]).split("/", 1)[-1] if nginx else "-",
        "wrk": (match[1] if (match := re.search(r"wrk (\S+)", wrk)) else wrk),
        "qqavatar": _version("qqavatar"),
        "commit": _first_line(["git", "rev-parse", "--short", "HEAD"]),
    }
    info.update({package: _version(package) for package in PACKAGES})
    return info
