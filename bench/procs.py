"""Child processes of the harness: started pinned to a core, waited for, measured, stopped.

Every process runs in its own session, so stopping it stops what it spawned (granian's
and gunicorn's workers, nginx's worker) and nothing else. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """`command` run on one core (`taskset -c`), or as is when pinning is off."""
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else list(command)


class Proc:
    """One started process with its output in a log file."""

    def __init__(self, name: str, command: Sequence[str], *, log_dir: Path,
                 env: dict[str, str] | None = None, cpu: int | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            pinned(command, cpu), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Until `url` answers (any status); RuntimeError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.output()}")
            try:
                httpx.get(url, timeout=2.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout:.0f}s:\n"
                           f"{self.output()}")

    def tree(self) -> list[int]:
        """This process and its descendants."""
        pids, seen = [self.pid], 0
        while seen < len(pids) and len(pids) < 256:
            pids += children(pids[seen])
            seen += 1
        return pids

    def rss_bytes(self) -> int:
        """Resident memory of the whole process tree (the server and its workers)."""
        return sum(rss_of(pid) for pid in self.tree())

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        # Workers that outlive their parent still belong to its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self._log.close()


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as listing:
                found += [int(child) for child in listing.read().split()]
    except OSError:
        pass
    return found


def rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
