"""The webhook scenario's parts: a fast local receiver (started by the bench), the webhooks
plugin activated with one endpoint at it, and the delivery throughput measured on a backlog."""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.errors import BenchError
from bench.plugins import NAME as BENCH_HOOK
from bench.plugins import PROPAGATION_SECONDS

BACKLOG = 500
"""Events queued while the receiver is away, then timed as they drain."""


class Receiver:
    """A fast local receiver in a process of its own (so it never shares the bench client's
    interpreter): it answers every post with 204 and notes when it came; while paused, with
    503 (so a backlog builds up, as while a receiver is down)."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.port = free_port()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.webhook_receiver", str(self.port)],
            cwd=Path(__file__).resolve().parents[1],
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self._ask("GET", "/stats")
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise BenchError("the webhook receiver did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(5)
            self._process = None

    def _ask(self, method: str, path: str) -> Any:
        reply = httpx.request(method, f"http://127.0.0.1:{self.port}{path}", timeout=5)
        reply.raise_for_status()
        return reply.json()

    def pause(self, paused: bool) -> None:
        self._ask("POST", "/pause" if paused else "/resume")

    def count(self) -> int:
        return int(self._ask("GET", "/stats")["count"])

    def arrivals_after(self, start: int) -> list[float]:
        return [float(t) for t in self._ask("GET", f"/stats?since={start}")["arrivals"]]


RECEIVER = Receiver()
atexit.register(RECEIVER.stop)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def activate(base_url: str, token: str, collection: str) -> None:
    """The bench's before hook off; the webhooks plugin on, with one endpoint (the receiver)
    for every item created in `collection`; checked with one create that arrives."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        if client.get(f"/api/plugins/{BENCH_HOOK}").json()["data"]["status"] == "active":
            client.post(f"/api/plugins/{BENCH_HOOK}/deactivate").raise_for_status()
        if client.get("/api/plugins/webhooks").json()["data"]["status"] == "available":
            client.post("/api/plugins/webhooks/install").raise_for_status()
        client.post("/api/plugins/webhooks/activate").raise_for_status()
        time.sleep(PROPAGATION_SECONDS)  # the gateway knows its routes
        settings = {
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 1.0,
            "max_attempts": 100,
            "disable_after_failures": 10000,
        }
        client.put("/api/plugins/webhooks/settings", json=settings).raise_for_status()
        if RECEIVER.port == 0:
            RECEIVER.start()
        endpoint = {
            "url": RECEIVER.url,
            "events": ["content:afterCreate"],
            "collections": [collection],
        }
        made = client.post("/api/plugins/webhooks/endpoints", json=endpoint)
        if made.status_code != 201:
            raise BenchError(f"the webhook endpoint was refused: {made.text}")
        time.sleep(PROPAGATION_SECONDS)
        before = RECEIVER.count()
        probe = {"collection": collection, "title": "webhook probe", "data": {}}
        client.post("/api/content", json=probe).raise_for_status()
        if not _arrived(before + 1, 10):
            raise BenchError("the probe's webhook did not arrive within 10 s")


def _arrived(count: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while RECEIVER.count() < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def throughput(base_url: str, token: str, collection: str) -> str:
    """Deliveries per second to the receiver, draining a backlog of `BACKLOG` events queued
    while it was away; as a note."""
    headers = {"Authorization": f"Bearer {token}"}
    # What the measured creates sent arrives first.
    time.sleep(2)
    RECEIVER.pause(True)
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for n in range(BACKLOG):
            body = {"collection": collection, "title": f"webhook backlog {n}", "data": {}}
            client.post("/api/content", json=body).raise_for_status()
    time.sleep(1)  # the plugins service has queued them
    start = RECEIVER.count()
    RECEIVER.pause(False)
    if not _arrived(start + BACKLOG, 120):
        return f"webhooks: only {RECEIVER.count() - start} of {BACKLOG} backlog deliveries"
    times = RECEIVER.arrivals_after(start)
    seconds = max(times[-1] - times[0], 1e-6)
    return (
        f"webhooks: a backlog of {BACKLOG} drained at {(BACKLOG - 1) / seconds:,.0f} deliveries/s"
    )
