"""Server processes started by the bench: start, wait until ready, measure RSS, stop for sure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO

from bench.errors import BenchError


def free_port() -> int:
    """A free TCP port on loopback (the tiny race until the server binds it is acceptable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One server process in its own session, so a terminal's Ctrl-C reaches only the bench."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group it leads (uvicorn workers too), SIGKILL after `timeout`."""
        if self.popen is not None and self.popen.poll() is None:
            family = descendants(self.pid)
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait()
            # Workers that outlived their leader: still in its group, so still ours.
            for pid in family:
                try:
                    if os.getpgid(pid) == self.pid:
                        os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal_group(self, sig: signal.Signals) -> None:
        # The group id is the leader's pid (start_new_session): only processes we started.
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> BenchError:
        tail = self.log_tail()
        return BenchError(f"{self.name} {what}; its log ends with:\n{tail or '(empty)'}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process and all its descendants so far."""
        if not self.alive():
            return 0.0
        return sum(cpu_seconds(p) for p in [self.pid, *descendants(self.pid)])

    def rss(self) -> dict[str, int]:
        """Resident memory of the process and its descendants (uvicorn workers): total, largest."""
        if not self.alive():
            return {"rss_bytes": 0, "largest_bytes": 0, "processes": 0}
        sizes = [rss_bytes(p) for p in [self.pid, *descendants(self.pid)]]
        return {"rss_bytes": sum(sizes), "largest_bytes": max(sizes), "processes": len(sizes)}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The command name in field 2 may contain spaces; fields 3+ follow its closing ')'.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    try:
        fields = _stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    except (OSError, ValueError, IndexError):
        return 0.0


def postgres_cpu_seconds() -> float:
    """CPU time of every process named `postgres` (the server and its backends) so far, and of
    the backends that exited (counted in their parent's cutime and cstime once reaped): without
    those, the sum fell whenever a backend ended, and a scenario's share went negative."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                fields = _stat_fields(int(entry.name))
                # utime, stime, cutime, cstime
                total += sum(int(f) for f in fields[11:15]) / CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            continue
    return total


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _resident(pid: int) -> int:
    """RSS from /proc/<pid>/statm: the same figure as VmRSS, cheaper to read 100 times a second."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


class PeakRss:
    """The largest RSS each server (with its workers) reaches while the block runs, sampled
    every `interval` seconds from a thread: a body held whole for a moment shows as a peak,
    gone again by the time the block ends. `peak` maps each server's name to bytes."""

    def __init__(self, servers: Iterable[Server], interval: float = 0.01) -> None:
        # The processes are found once: walking /proc on every sample would cost more than
        # the sampling itself.
        self._pids = {s.name: [s.pid, *descendants(s.pid)] for s in servers if s.alive()}
        self.peak = dict.fromkeys(self._pids, 0)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-peak-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        for name, pids in self._pids.items():
            self.peak[name] = max(self.peak[name], sum(_resident(p) for p in pids))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()


def descendants(root: int) -> list[int]:
    """Every process below `root`, found through the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def wait_http_ok(url: str, servers: Iterable[Server], timeout: float = 60.0) -> None:
    """Poll `url` until it answers 200; fail early, with its log, if a server exits."""
    watched = list(servers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for server in watched:
            if not server.alive():
                raise server.failure("exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    names = ", ".join(s.name for s in watched)
    raise BenchError(f"{url} did not answer 200 within {timeout:.0f} s (servers: {names})")
