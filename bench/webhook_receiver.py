"""The webhook scenario's receiver, run as its own process (`python -m bench.webhook_receiver
PORT`): 204 to every post (503 while paused), and `GET /stats?since=N` with the count and the
arrival times (epoch seconds) from the N-th on."""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

ARRIVALS: list[float] = []
LOCK = threading.Lock()
PAUSED = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/pause":
            PAUSED.set()
            return self._answer(200, b"{}")
        if self.path == "/resume":
            PAUSED.clear()
            return self._answer(200, b"{}")
        if PAUSED.is_set():
            return self._answer(503)
        with LOCK:
            ARRIVALS.append(time.time())
        self._answer(204)

    def do_GET(self) -> None:
        since = int(parse_qs(urlsplit(self.path).query).get("since", ["-1"])[0])
        with LOCK:
            body = {"count": len(ARRIVALS), "arrivals": ARRIVALS[since:] if since >= 0 else []}
        self._answer(200, orjson.dumps(body))

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
