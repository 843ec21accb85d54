"""The machine: cores and pinning, the wrk binary (installed if missing), facts for the report."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Pinning:
    """Which cores the servers and the load generator get; empty means unpinned."""

    server_cores: tuple[int, ...]
    client_cores: tuple[int, ...]
    note: str

    @property
    def enabled(self) -> bool:
        return bool(self.server_cores)

    def server_prefix(self) -> list[str]:
        return _taskset(self.server_cores)

    def client_prefix(self) -> list[str]:
        return _taskset(self.client_cores)

    def pin_this_process(self) -> None:
        """Move the orchestrator (seeding, sequential clients) off the servers' cores."""
        if self.client_cores:
            os.sched_setaffinity(0, set(self.client_cores))


def _taskset(cores: tuple[int, ...]) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, cores))] if cores else []


def plan_pinning(workers: int, pinned: bool = True) -> Pinning:
    """Servers on the first core(s), the load generator on the next one, when there are two+
    (and `pinned`: otherwise every process may run on every core)."""
    if not pinned:
        return Pinning(
            (), (), "not pinned (--unpinned): servers and load generator share the cores"
        )
    cores = tuple(sorted(os.sched_getaffinity(0)))
    if len(cores) < 2:
        return Pinning((), (), f"not pinned: only {len(cores)} core available")
    if shutil.which("taskset") is None:
        return Pinning((), (), "not pinned: taskset (util-linux) is missing")
    # One core per gateway worker, but always leave one core to the load generator.
    servers = cores[: max(1, min(workers, len(cores) - 1))]
    client = (cores[len(servers)],)
    return Pinning(
        servers,
        client,
        f"servers on core(s) {','.join(map(str, servers))}, load generator and bench client "
        f"on core {client[0]}",
    )


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package first if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise BenchError("wrk is missing and apt-get is not available; install wrk and retry")
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise BenchError("wrk is missing; install it (apt-get install wrk) and retry")
        sudo = ["sudo"]
    print("bench: wrk is missing; installing it with apt-get", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("could not install wrk with apt-get; install it and retry")
    return found


def wrk_version() -> str:
    # `wrk --version` prints its banner and exits with status 1.
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    lines = (out.stdout or out.stderr).splitlines()
    return lines[0].split(" Copyright")[0].strip() if lines else ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str:
    """Short commit id, with `+dirty` when the work tree has changes."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit}+dirty" if git("status", "--porcelain") else commit


def machine_facts() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version(),
        "commit": git_revision(),
    }
