"""Sequential latency: one keep-alive HTTP/1.1 client sends requests one after another.

A Python client is fine here: it measures the latency of one request at a time, not the
server's capacity, and its own cost (the same for a scenario and its floor) is small. A body
may be streamed (an iterable of chunks, with its `Content-Length` given), so that a 50 MB
upload costs the client one chunk of memory, not the whole file.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from bench.measures import LatencyResult, percentile

Body = bytes | Iterable[bytes]
# Untimed work around each request: `prepare(n)` returns request n's path (say, after storing
# the file it reads); `cleanup(n, status, body)` sees its answer (say, to delete what it made).
Prepare = Callable[[int], str]
Cleanup = Callable[[int, int, bytes], None]


def run_sequential(
    base_url: str,
    method: str,
    path: str,
    make_body: Callable[[int], Body] | None,
    *,
    count: int,
    first: int = 0,
    headers: dict[str, str] | None = None,
    body_bytes: int | None = None,
    prepare: Prepare | None = None,
    cleanup: Cleanup | None = None,
) -> LatencyResult:
    """`count` requests, bodies `make_body(first)` onwards; a non-2xx answer is an error.
    `body_bytes` is the `Content-Length` of a streamed body (without it, chunked). Only the
    request itself is timed, not `prepare` or `cleanup`."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    base_headers = {"Content-Type": "application/json", **(headers or {})}
    if body_bytes is not None:
        base_headers["Content-Length"] = str(body_bytes)
    timings: list[float] = []
    errors = 0
    try:
        for n in range(first, first + count):
            target = prepare(n) if prepare is not None else path
            body = make_body(n) if make_body is not None else None
            status, answer = 0, b""
            started = time.perf_counter()
            try:
                conn.request(method, target, body=body, headers=base_headers)
                reply = conn.getresponse()
                answer = reply.read()
                status = reply.status
            except (OSError, http.client.HTTPException):
                conn.close()  # reconnects on the next request
            timings.append((time.perf_counter() - started) * 1000)
            errors += not 200 <= status < 300
            if cleanup is not None:
                cleanup(n, status, answer)
    finally:
        conn.close()
    timings.sort()
    return LatencyResult(
        requests=len(timings),
        p50_ms=round(percentile(timings, 50), 3),
        p99_ms=round(percentile(timings, 99), 3),
        mean_ms=round(sum(timings) / len(timings), 3) if timings else 0.0,
        max_ms=round(timings[-1], 3) if timings else 0.0,
        errors=errors,
    )
