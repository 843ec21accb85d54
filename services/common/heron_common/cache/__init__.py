"""The three-tier read-through cache: process memory (L1), Redis (L2), the loader (the database).

Reads go L1 → L2 → loader and fill upward; writers call `invalidate` after their commit, which
deletes from Redis, tells every other process over pub/sub, and drops the local copies.

Race guard. A fill must not store a value read before an invalidation it did not see:
- In this process, every invalidation (local, or heard on the bus) takes the next number of a
  sequence and is kept in a short log. A fill remembers the sequence when its lookup began and
  stores into memory only if no logged invalidation since then covers its key or tags (a log
  that no longer reaches back that far counts as covering).
- Across processes, the same idea runs inside Redis (see `cache_redis`): the lookup reads the
  namespace's sequence in the same MGET, and the fill script refuses to store when a newer
  invalidation marker covers the key or a tag. A refused L2 fill is not stored in memory either.
- A caller who joins an in-flight load after an invalidation covering it does not take that
  load's (possibly older) answer: it loads again.

Losing the bus. Without the subscription this process cannot hear of writes elsewhere, so the
memory tier is flushed at once, kept to entries at most `degraded_ttl` old (0 disables it)
and flushed again on every reconnect attempt, then once more when the subscription is back.
With no Redis configured at all, the process is assumed to be the only one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry
from redis.asyncio import Redis

from heron_common.cache.bus import InvalidationBus
from heron_common.cache.codec import MSGPACK, Codec
from heron_common.cache.fill import Counters, Filler, FillOptions, Outcome
from heron_common.cache.invalidation import Invalidation, InvalidationLog, Outbox
from heron_common.cache.lru import MemoryLRU
from heron_common.cache.metrics import COLLECTOR
from heron_common.cache.redis import RedisTier, value_prefix
from heron_common.cache.types import (
    NOT_FOUND,
    CacheResult,
    Loaded,
    Loader,
    NotFoundMarker,
    Source,
    Status,
)

__all__ = [
    "NOT_FOUND",
    "CacheResult",
    "Loaded",
    "Loader",
    "NotFoundMarker",
    "Source",
    "Status",
    "TieredCache",
]

logger = logging.getLogger("heron.cache")

V = TypeVar("V")

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # no glob characters: it is part of SCAN patterns
_MAX_JOINS = 3


@dataclass(slots=True, eq=False)
class _Flight(Generic[V]):
    key: str
    tags: tuple[str, ...]
    start_seq: int
    task: asyncio.Task[Outcome[V]] = field(init=False)


class TieredCache(Generic[V]):
    """One namespace of the cache ("content", "gateway", "auth", ...) in this process.

    Values are whatever `codec` handles: by default msgpack (JSON-like values and bytes); use
    `RESPONSE` for ready-to-send `CachedResponse`s. Values served from memory are shared
    between callers: treat them as immutable. `redis_prefix` is the installation's
    (`HeronSettings.redis_prefix`), so that installations can share one Redis. Call `start()`
    (or use `async with`) so that the process hears invalidations from the others; until then
    memory entries are kept short, as while the bus is down.

    The less obvious options: `degraded_ttl` caps memory entries while the bus is down (0: no
    memory tier then); `lock_ttl`/`lock_wait` bound the cross-process lock of `lock=True` reads
    and the wait for its holder; `marker_ttl` is how long Redis remembers an invalidation for
    the race guard (fills whose lookup is older than half of it skip Redis); `breaker_seconds`
    is how long Redis is skipped after a failure; `registry` receives the Prometheus collector
    (None: no metrics); `clock` drives memory expiry (tests pass a fake one).
    """

    def __init__(
        self,
        namespace: str,
        *,
        redis: Redis | None = None,
        redis_prefix: str = "heron",
        codec: Codec[V] = MSGPACK,
        enabled: bool = True,
        ttl: float = 300.0,
        negative_ttl: float = 5.0,
        jitter: float = 0.1,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        degraded_ttl: float = 1.0,
        lock_ttl: float = 2.0,
        lock_wait: float = 0.5,
        marker_ttl: float = 60.0,
        breaker_seconds: float = 1.0,
        bus_ping_interval: float = 1.0,
        registry: CollectorRegistry | None = REGISTRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _NAMESPACE.fullmatch(namespace):
            raise ValueError(f"invalid cache namespace {namespace!r}")
        if not _PREFIX.fullmatch(redis_prefix):
            raise ValueError(f"invalid Redis prefix {redis_prefix!r}")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self._namespace = namespace
        self.key_prefix = value_prefix(redis_prefix, namespace)
        """Where this namespace's entries are (would be) in Redis."""
        self.enabled = enabled
        self.options = FillOptions(
            ttl=ttl,
            negative_ttl=negative_ttl,
            jitter=jitter,
            degraded_ttl=degraded_ttl,
            lock_ttl=lock_ttl,
            lock_wait=lock_wait,
            # A lookup older than half the markers' lifetime could miss an expired marker.
            fill_deadline=marker_ttl / 2,
        )
        self._clock = clock
        self._counters = Counters()
        self._origin = uuid.uuid4().hex
        self._memory: MemoryLRU[V] = MemoryLRU(max_entries, max_bytes, clock)
        self._flights: dict[str, _Flight[V]] = {}
        self._log = InvalidationLog()
        self._l2: RedisTier | None = None
        self._outbox: Outbox | None = None
        self._bus: InvalidationBus | None = None
        if redis is not None:
            self._l2 = RedisTier(
                redis,
                namespace,
                prefix=redis_prefix,
                marker_ttl=marker_ttl,
                breaker_seconds=breaker_seconds,
            )
            self._outbox = Outbox(self._l2, self._origin)
            self._bus = InvalidationBus(
                redis,
                self._l2.channel,
                on_message=self._on_bus_message,
                on_up=self._on_bus_up,
                on_down=self._on_bus_down,
                on_tick=self._on_bus_tick,
                ping_interval=bus_ping_interval,
            )
        self._filler = Filler(
            memory=self._memory,
            log=self._log,
            l2=self._l2,
            codec=codec,
            counters=self._counters,
            options=self.options,
            clock=clock,
            degraded=lambda: not self.bus_healthy,
        )
        if registry is not None:
            COLLECTOR.track(self)
            COLLECTOR.register(registry)

    @property
    def namespace(self) -> str:
        """The namespace, as in the Redis keys `<prefix>:cache:<namespace>:<key>`."""
        return self._namespace

    @property
    def bus_healthy(self) -> bool:
        """True when this process hears every invalidation (always, without Redis)."""
        return self._bus is None or self._bus.healthy

    # Lifecycle

    async def start(self) -> None:
        """Start listening for invalidations (returns at once; see `bus_healthy`)."""
        if self._bus is not None:
            self._bus.start()

    async def stop(self) -> None:
        """Stop listening; the memory tier is flushed, as it can no longer hear invalidations."""
        if self._bus is not None:
            await self._bus.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # Reads

    def peek(self, key: str) -> CacheResult[V] | None:
        """The memory tier only, synchronously: for a hot path that answers hits without await."""
        if not self.enabled:
            return None
        entry = self._memory.get(key)
        if entry is None:
            return None
        self._counters.memory_hits += 1
        return CacheResult(entry.value, "memory", entry.expires_at - self._clock(), entry.found)

    async def get_or_load(
        self,
        key: str,
        loader: Loader[V],
        *,
        tags: Sequence[str] = (),
        ttl: float | None = None,
        lock: bool = False,
    ) -> CacheResult[V]:
        """The value for `key` from the nearest tier, running `loader` on a miss.

        Concurrent misses on one key in this process share one load; the loader's exception
        reaches every one of them and nothing is cached. `tags` label the entry for
        `invalidate(tags=...)`; `ttl` defaults to the cache's (both are jittered on fill).
        `lock=True` (for very hot keys) also makes other processes wait briefly for this one's
        load instead of running their own.
        """
        if not self.enabled:
            return await self._bypass(loader)
        hit = self.peek(key)
        if hit is not None:
            return hit
        self._counters.memory_misses += 1
        tags = tuple(tags)
        for _ in range(_MAX_JOINS):
            joined_at = self._log.seq
            flight = self._flights.get(key)
            if flight is None:
                flight = self._start_flight(key, loader, tags, ttl, lock)
            result, final_tags = await asyncio.shield(flight.task)
            # An invalidation between the load's start and our joining it may have overtaken
            # the load's answer; a caller who arrived after the invalidation must not get it.
            if not self._log.touched(key, final_tags, after=flight.start_seq, upto=joined_at):
                break
        return result

    async def _bypass(self, loader: Loader[V]) -> CacheResult[V]:
        value, _, _ = await self._filler.call_loader(loader, ())
        if isinstance(value, NotFoundMarker):
            return CacheResult(None, "database", 0.0, found=False, bypass=True)
        return CacheResult(value, "database", 0.0, bypass=True)

    def _start_flight(
        self,
        key: str,
        loader: Loader[V],
        tags: tuple[str, ...],
        ttl: float | None,
        lock: bool,
    ) -> _Flight[V]:
        flight: _Flight[V] = _Flight(key, tags, self._log.seq)
        flight.task = asyncio.create_task(self._run_flight(flight, loader, ttl, lock))
        # Mark a failure as seen even if every waiter was cancelled, so it is not logged twice.
        flight.task.add_done_callback(lambda task: task.cancelled() or task.exception())
        self._flights[key] = flight
        return flight

    async def _run_flight(
        self, flight: _Flight[V], loader: Loader[V], ttl: float | None, lock: bool
    ) -> Outcome[V]:
        try:
            return await self._filler.resolve(
                flight.key, flight.tags, flight.start_seq, loader, ttl, lock
            )
        finally:
            if self._flights.get(flight.key) is flight:
                del self._flights[flight.key]

    # Invalidation

    async def invalidate(self, *, keys: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        """Drop entries by key and by tag in every tier of every process. Call after commit.

        Never raises: if Redis cannot be reached, this process's memory is still dropped and
        the Redis side is retried (in order) once Redis answers again.
        """
        invalidation = Invalidation(frozenset(keys), frozenset(tags))
        if invalidation.keys or invalidation.tags:
            await self._invalidate(invalidation)

    async def invalidate_pattern(self, pattern: str) -> None:
        """Drop every key matching a glob (`*`, `?`, `[...]`); Redis is searched with SCAN."""
        await self._invalidate(Invalidation(patterns=(pattern,)))

    async def clear(self) -> None:
        """Drop the whole namespace, everywhere."""
        await self._invalidate(Invalidation(everything=True))

    async def _invalidate(self, invalidation: Invalidation) -> None:
        # Redis first, memory second: a reader here that fetched the old entry from Redis
        # before it was deleted is then refused by the memory tier's race guard.
        if self._outbox is not None:
            await self._outbox.send(invalidation)
        self._apply(invalidation)

    def _apply(self, invalidation: Invalidation) -> None:
        """Drop what an invalidation covers from memory and from the in-flight loads."""
        self._log.record(invalidation)
        self._counters.invalidations += 1
        if invalidation.everything:
            self._memory.clear()
            self._flights.clear()
            return
        self._memory.discard(invalidation.keys)
        self._memory.discard_tags(invalidation.tags)
        for pattern in invalidation.patterns:
            self._memory.discard_matching(pattern)
        # New callers start a fresh load instead of joining one the invalidation overtook.
        for key, flight in list(self._flights.items()):
            if invalidation.covers(key, flight.tags):
                del self._flights[key]

    def _on_bus_message(self, data: bytes) -> None:
        try:
            origin, invalidation = Invalidation.from_message(data)
        except ValueError:
            logger.warning("unreadable cache invalidation; flushing memory tier")
            origin, invalidation = "", Invalidation(everything=True)
        if origin != self._origin:  # our own were applied when sent
            self._apply(invalidation)

    async def _on_bus_up(self) -> None:
        # Invalidations published while we were away are lost: forget everything once more.
        self._apply(Invalidation(everything=True))
        if self._l2 is not None and self._outbox is not None:
            self._l2.reset_breaker()
            await self._outbox.retry()

    def forget_local(self) -> None:
        """Drop this process's memory tier (fills in flight are not stored), nothing else.

        For a process that knows it changed data while its invalidations cannot reach others.
        """
        self._apply(Invalidation(everything=True))

    def _on_bus_down(self) -> None:
        self._apply(Invalidation(everything=True))

    async def _on_bus_tick(self) -> None:
        # Invalidations that failed while the bus stayed up (a Redis hiccup) are retried here,
        # not only at the next write.
        if self._outbox is not None:
            await self._outbox.retry()

    # Introspection

    def stats(self) -> dict[str, Any]:
        """Counters and sizes per tier, as plain JSON-able data (for an admin endpoint)."""
        counts = self._counters
        bus = self._bus
        return {
            "namespace": self._namespace,
            "enabled": self.enabled,
            "memory": {
                "hits": counts.memory_hits,
                "misses": counts.memory_misses,
                "evictions": self._memory.evictions,
                "expirations": self._memory.expirations,
                "entries": len(self._memory),
                "bytes": self._memory.bytes,
                "max_entries": self._memory.max_entries,
                "max_bytes": self._memory.max_bytes,
            },
            "redis": {
                "configured": self._l2 is not None,
                "available": self._l2 is not None and self._l2.available,
                "hits": counts.redis_hits,
                "misses": counts.redis_misses,
                "corrupt": counts.redis_corrupt,
                "errors": 0 if self._l2 is None else self._l2.errors,
            },
            "bus": {
                "configured": bus is not None,
                "healthy": self.bus_healthy,
                "connects": 0 if bus is None else bus.connects,
                "losses": 0 if bus is None else bus.losses,
                "received": 0 if bus is None else bus.received,
            },
            "loads": counts.loads,
            "load_errors": counts.load_errors,
            "fills_rejected": counts.fills_rejected,
            "invalidations": counts.invalidations,
            "pending_invalidations": 0 if self._outbox is None else len(self._outbox),
            "in_flight": len(self._flights),
        }

    async def redis_entries(self) -> int | None:
        """How many entries the namespace has in Redis (a SCAN: admin use only); None if down."""
        return None if self._l2 is None else await self._l2.count_entries()
