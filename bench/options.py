"""The benchmark's settings, resolved from the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Options:
    embedded: bool
    items: int
    duration: int
    warmup: int
    connections: int
    workers: int
    pinned: bool
    scenarios: tuple[str, ...] | None
    quick: bool
    reference: bool
    sequential_requests: int
    seed_concurrency: int
    seed_via: Literal["auto", "api", "bulk"]
    pg_admin_url: str
    redis_url: str
    results_dir: Path

    @property
    def bulk_seed(self) -> bool:
        """Seed in bulk: when asked, or by default above 10,000 items (see bulk.py)."""
        return self.seed_via == "bulk" or (self.seed_via == "auto" and self.items > 10_000)

    @property
    def mode(self) -> str:
        return "embedded" if self.embedded else "production"
