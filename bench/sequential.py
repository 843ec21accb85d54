"""Sequential latency: one keep-alive HTTP/1.1 client sends requests one after another.

A Python client is fine here: it measures the latency of one request at a time, not the
server's capacity, and its own cost (the same for a scenario and its floor) is small.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from bench.measures import LatencyResult, percentile


def run_sequential(
    base_url: str,
    method: str,
    path: str,
    make_body: Callable[[int], bytes] | None,
    *,
    count: int,
    first: int = 0,
    headers: dict[str, str] | None = None,
) -> LatencyResult:
    """`count` requests, bodies `make_body(first)` onwards; a non-2xx answer is an error."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    base_headers = {"Content-Type": "application/json", **(headers or {})}
    timings: list[float] = []
    errors = 0
    try:
        for n in range(first, first + count):
            body = make_body(n) if make_body is not None else None
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=base_headers)
                reply = conn.getresponse()
                reply.read()
                ok = 200 <= reply.status < 300
            except (OSError, http.client.HTTPException):
                conn.close()  # reconnects on the next request
                ok = False
            timings.append((time.perf_counter() - started) * 1000)
            errors += not ok
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
