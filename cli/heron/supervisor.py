"""Runs Heron's processes on one machine: start in order, restart on crash, stop on signal."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies, even by SIGKILL.

    Children run in their own session (so a terminal's Ctrl-C reaches only the supervisor);
    without this, a killed supervisor would leave them running and holding their ports.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Process:
    """One Heron process: its module (`python -m <module>`) and its environment."""

    name: str
    module: str
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env={**os.environ, **self.env},
            # Own session: a terminal's Ctrl-C reaches only the supervisor, which then stops
            # the processes in order (gateway first, so no request meets a stopped service).
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class Supervisor:
    def __init__(self, processes: list[Process]) -> None:
        self.processes = processes
        self.stopping = False

    def _request_stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def wait_http_ok(self, url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            if any(p.popen is not None and p.popen.poll() is not None for p in self.processes):
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def run(self, ready_url: str, on_ready: str) -> int:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        for process in self.processes:
            process.start()
        if self.wait_http_ok(ready_url, timeout=60):
            print(on_ready, flush=True)
        elif not self.stopping:
            print("heron: a process failed to start; see the log above", file=sys.stderr)
            self.shutdown()
            return 1
        while not self.stopping:
            for process in self.processes:
                if process.alive() or self.stopping:
                    continue
                now = time.monotonic()
                if process.next_start == 0.0:
                    code = process.popen.returncode if process.popen else None
                    delay = min(2.0 ** min(process.restarts, 5), 30.0)
                    print(
                        f"heron: {process.name} exited (code {code}); restarting in {delay:.0f}s",
                        file=sys.stderr,
                        flush=True,
                    )
                    process.next_start = now + delay
                elif now >= process.next_start:
                    process.restarts = 0 if now - process.started_at > 60 else process.restarts + 1
                    process.next_start = 0.0
                    process.start()
            time.sleep(0.2)
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        print("heron: stopping", file=sys.stderr, flush=True)
        # Reverse start order: the gateway stops taking requests before services go away.
        for process in reversed(self.processes):
            process.stop(timeout=15)
