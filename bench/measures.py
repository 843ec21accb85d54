"""What a measurement yields: throughput under load, or sequential latency."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: throughput and latency percentiles at a fixed number of connections."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    bytes: int


@dataclass(frozen=True)
class LatencyResult:
    """Requests sent one after another by one client: latency, not capacity."""

    requests: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return 1000.0 / self.mean_ms if self.mean_ms else 0.0


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100 * len(sorted_values))))
    return sorted_values[rank - 1]
