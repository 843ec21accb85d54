"""Drive load with wrk (C, one thread, pinned) and parse the JSON its Lua `done` hook prints."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bench.errors import BenchError
from bench.machine import Pinning
from bench.measures import LoadResult

SCRIPT = Path(__file__).resolve().parent / "lua" / "report.lua"
MARKER = "BENCH_JSON "


def run_wrk(
    url: str,
    *,
    duration: int,
    connections: int,
    pinning: Pinning,
    paths_file: Path | None = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """`wrk -t1 -c<connections> -d<duration>s` against `url` (loopback only)."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise BenchError(f"refusing to load a non-loopback address: {url}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    if paths_file is not None:
        env["BENCH_PATHS"] = str(paths_file)
    if headers:
        env["BENCH_HEADERS"] = "\n".join(f"{k}: {v}" for k, v in headers.items())
    argv = [
        *pinning.client_prefix(),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(SCRIPT),
        url,
    ]
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish against {url}") from exc
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            return _parse(json.loads(line[len(MARKER) :]))
    raise BenchError(f"wrk failed against {url}:\n{done.stdout}\n{done.stderr}".strip())


def _parse(raw: dict[str, object]) -> LoadResult:
    latency = raw["latency_us"]
    errors = raw["errors"]
    assert isinstance(latency, dict) and isinstance(errors, dict)
    requests = int(str(raw["requests"]))
    seconds = int(str(raw["duration_us"])) / 1e6
    return LoadResult(
        requests=requests,
        seconds=round(seconds, 3),
        rps=round(requests / seconds, 1) if seconds else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        p999_ms=latency["p999"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        max_ms=latency["max"] / 1000,
        # Non-2xx/3xx answers ("status") and socket errors alike.
        errors=sum(int(v) for v in errors.values()),
        error_detail={str(k): int(v) for k, v in errors.items()},
        bytes=int(str(raw["bytes"])),
    )
