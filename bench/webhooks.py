"""The webhook scenario's parts: a fast local receiver (started by the bench), the webhooks
plugin activated with one endpoint at it, and the delivery throughput measured on a backlog."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bench.errors import BenchError
from bench.plugins import NAME as BENCH_HOOK
from bench.plugins import PROPAGATION_SECONDS

BACKLOG = 500
"""Events queued while the receiver is away, then timed as they drain."""


class Receiver:
    """Answers every post with 204 and notes when it came."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.arrivals.append(time.monotonic())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)


RECEIVER = Receiver()


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
            "retry_max_seconds": 0.2,
            "max_attempts": 1000,
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
    RECEIVER.stop()
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for n in range(BACKLOG):
            body = {"collection": collection, "title": f"webhook backlog {n}", "data": {}}
            client.post("/api/content", json=body).raise_for_status()
    time.sleep(1)  # the plugins service has queued them
    start = RECEIVER.count()
    RECEIVER.start()
    if not _arrived(start + BACKLOG, 120):
        return f"webhooks: only {RECEIVER.count() - start} of {BACKLOG} backlog deliveries"
    times = RECEIVER.arrivals[start:]
    seconds = max(times[-1] - times[0], 1e-6)
    return (
        f"webhooks: a backlog of {BACKLOG} drained at {(BACKLOG - 1) / seconds:,.0f} deliveries/s"
    )
