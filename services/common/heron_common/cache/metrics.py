"""Prometheus metrics for every cache in the process, read from their stats at scrape time.

One collector serves all caches (tracked weakly, so a dropped cache disappears from the
metrics), and it is registered at most once per registry: creating many caches, in a service
or in tests, never raises "Duplicated timeseries". Caches sharing a namespace in one process
are summed.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

_COUNTERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("loads", "Loader (database) calls.", ("loads",)),
    ("load_errors", "Loader calls that raised.", ("load_errors",)),
    ("fills_rejected", "Fills dropped because an invalidation overtook them.", ("fills_rejected",)),
    ("invalidations", "Invalidations applied to this process's memory tier.", ("invalidations",)),
    ("redis_errors", "Redis commands that failed.", ("redis", "errors")),
    ("redis_corrupt", "Undecodable Redis entries, treated as misses.", ("redis", "corrupt")),
    ("bus_losses", "Times the invalidation subscription was lost.", ("bus", "losses")),
    (
        "memory_evictions",
        "Memory-tier entries evicted to stay within bounds.",
        ("memory", "evictions"),
    ),
)
_GAUGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("memory_entries", "Entries in the memory tier.", ("memory", "entries")),
    ("memory_bytes", "Bytes (serialized values) in the memory tier.", ("memory", "bytes")),
)


class StatsSource(Protocol):
    """What the collector reads: a cache's namespace and its `stats()` dict."""

    @property
    def namespace(self) -> str: ...

    def stats(self) -> dict[str, Any]: ...


class CacheCollector:
    """A custom collector that turns each tracked cache's `stats()` into metric families."""

    def __init__(self) -> None:
        self._caches: weakref.WeakSet[Any] = weakref.WeakSet()
        self._registries: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()
        self._lock = threading.Lock()

    def track(self, cache: StatsSource) -> None:
        self._caches.add(cache)

    def untrack(self, cache: StatsSource) -> None:
        self._caches.discard(cache)

    def register(self, registry: CollectorRegistry) -> None:
        """Add this collector to `registry`, once however often it is called."""
        with self._lock:
            if registry not in self._registries:
                registry.register(self)
                self._registries.add(registry)

    def describe(self) -> Iterable[Metric]:
        # The names let the registry refuse a second collector producing the same series.
        return self._families()

    def collect(self) -> Iterable[Metric]:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for cache in list(self._caches):
            by_namespace.setdefault(cache.namespace, []).append(cache.stats())
        return self._families(by_namespace)

    def _families(
        self, by_namespace: dict[str, list[dict[str, Any]]] | None = None
    ) -> Iterator[Metric]:
        stats = by_namespace or {}
        hits = CounterMetricFamily(
            "heron_cache_hits", "Cache hits by tier.", labels=["namespace", "tier"]
        )
        misses = CounterMetricFamily(
            "heron_cache_misses", "Cache misses by tier.", labels=["namespace", "tier"]
        )
        for namespace, items in stats.items():
            for tier in ("memory", "redis"):
                hits.add_metric([namespace, tier], _sum(items, (tier, "hits")))
                misses.add_metric([namespace, tier], _sum(items, (tier, "misses")))
        yield hits
        yield misses
        for name, doc, path in _COUNTERS:
            counter = CounterMetricFamily(f"heron_cache_{name}", doc, labels=["namespace"])
            for namespace, items in stats.items():
                counter.add_metric([namespace], _sum(items, path))
            yield counter
        for name, doc, path in _GAUGES:
            gauge = GaugeMetricFamily(f"heron_cache_{name}", doc, labels=["namespace"])
            for namespace, items in stats.items():
                gauge.add_metric([namespace], _sum(items, path))
            yield gauge
        healthy = GaugeMetricFamily(
            "heron_cache_bus_healthy",
            "1 when every cache of the namespace hears invalidations (or needs none).",
            labels=["namespace"],
        )
        for namespace, items in stats.items():
            healthy.add_metric([namespace], float(all(s["bus"]["healthy"] for s in items)))
        yield healthy


def _sum(items: list[dict[str, Any]], path: tuple[str, ...]) -> float:
    total = 0.0
    for stats in items:
        value: Any = stats
        for part in path:
            value = value[part]
        total += float(value)
    return total


COLLECTOR = CacheCollector()


def register_metrics(registry: CollectorRegistry = REGISTRY) -> None:
    """Expose every cache's metrics through `registry` (idempotent)."""
    COLLECTOR.register(registry)
