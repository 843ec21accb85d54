"""What one run produced: scenario outcomes, floors, memory, and the run's circumstances."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bench.measures import LatencyResult, LoadResult

Status = Literal["ok", "n/a", "error"]


@dataclass(frozen=True)
class FloorRun:
    """One floor measurement; `name` is "raw ASGI" or "echo hop"."""

    name: str
    body_bytes: int
    kind: Literal["load", "sequential"]
    result: LoadResult | LatencyResult
    # Milliseconds of CPU each floor process spent per request during the measured run.
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetCheck:
    label: str
    met: bool


@dataclass(frozen=True)
class Outcome:
    key: str
    title: str
    kind: Literal["load", "sequential"]
    status: Status
    note: str = ""
    body_bytes: int | None = None
    result: LoadResult | LatencyResult | None = None
    floor: FloorRun | None = None
    # Load: req/s ÷ the floor's req/s. Sequential: the floor's p50 ÷ this p50.
    ratio: float | None = None
    targets: tuple[TargetCheck, ...] = ()
    # Milliseconds of CPU each Heron process (and PostgreSQL) spent per request.
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    # The compared scenario's req/s ÷ this one's (`compared_with` names it).
    relative: float | None = None
    compared_with: str = ""
    # The unavoidable cost of each request, timed by the bench (argon2 for a login), ms, and
    # what it is.
    baseline_ms: float | None = None
    baseline_label: str = ""
    # RSS of each process that answered, after the warm-up and after the measured run.
    rss_start: dict[str, dict[str, int]] = field(default_factory=dict)
    rss_end: dict[str, dict[str, int]] = field(default_factory=dict)
    # Sampled every 10 ms (uploads): each process's peak RSS over its RSS before the
    # scenario's first request, bytes.
    rss_peak_growth: dict[str, int] = field(default_factory=dict)
    # A streamed body's size ÷ the p50 (uploads), MB (2^20 bytes) per second.
    throughput_mb_s: float | None = None


@dataclass
class RunRecord:
    started_at: str
    mode: str
    description: str
    settings: dict[str, Any]
    machine: dict[str, Any]
    pinning: str
    seed: dict[str, Any] = field(default_factory=dict)
    features: dict[str, bool] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    floors: list[FloorRun] = field(default_factory=list)
    rss_start: dict[str, dict[str, int]] = field(default_factory=dict)
    rss_end: dict[str, dict[str, int]] = field(default_factory=dict)
    heron_processes: list[str] = field(default_factory=list)
    seconds: float = 0.0
