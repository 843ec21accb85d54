"""The miss path of a cache read: Redis lookup, cross-process lock, loader, guarded fills."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from heron_common.cache.codec import Codec, pack_envelope, unpack_envelope
from heron_common.cache.invalidation import InvalidationLog
from heron_common.cache.lru import MemoryEntry, MemoryLRU
from heron_common.cache.redis import FillResult, RedisTier
from heron_common.cache.types import CacheResult, Loaded, Loader, NotFoundMarker

V = TypeVar("V")

# A result and the entry's tags (with any the loader added).
Outcome = tuple[CacheResult[V], tuple[str, ...]]


@dataclass(slots=True)
class Counters:
    """What a cache counts, for `stats()` and the metrics."""

    memory_hits: int = 0
    memory_misses: int = 0
    redis_hits: int = 0
    redis_misses: int = 0
    redis_corrupt: int = 0
    loads: int = 0
    load_errors: int = 0
    fills_rejected: int = 0
    invalidations: int = 0


@dataclass(slots=True)
class FillOptions:
    """How long entries live and how long to wait for another process's load."""

    ttl: float
    negative_ttl: float
    jitter: float
    degraded_ttl: float  # memory TTL cap while invalidations cannot be heard
    lock_ttl: float
    lock_wait: float
    fill_deadline: float  # an older lookup is not written to Redis (its markers may be gone)


class Filler(Generic[V]):
    """Resolves a key missing from memory; fills the tiers unless an invalidation overtook it."""

    def __init__(
        self,
        *,
        memory: MemoryLRU[V],
        log: InvalidationLog,
        l2: RedisTier | None,
        codec: Codec[V],
        counters: Counters,
        options: FillOptions,
        clock: Callable[[], float],
        degraded: Callable[[], bool],
    ) -> None:
        self._memory = memory
        self._log = log
        self._l2 = l2
        self._codec = codec
        self._counters = counters
        self._options = options
        self._clock = clock
        self._degraded = degraded
        self._random = random.Random()

    async def call_loader(
        self, loader: Loader[V], tags: tuple[str, ...]
    ) -> tuple[V | NotFoundMarker, tuple[str, ...], float | None]:
        """Run a loader (counted): its value, the entry's tags with any it added, its TTL."""
        self._counters.loads += 1
        try:
            produced = await loader()
        except Exception:
            self._counters.load_errors += 1
            raise
        if isinstance(produced, Loaded):
            extra = tuple(tag for tag in produced.tags if tag not in tags)
            return produced.value, tags + extra, produced.ttl
        return produced, tags, None

    async def resolve(
        self,
        key: str,
        tags: tuple[str, ...],
        start_seq: int,
        loader: Loader[V],
        ttl: float | None,
        lock: bool,
    ) -> Outcome[V]:
        """Look `key` up in Redis, else load it (after other processes' fill, with `lock`).

        `start_seq` is the process's invalidation sequence when the lookup began: the fills
        are refused if an invalidation since then covers the key or its tags.
        """
        l2 = self._l2
        redis_seq: int | None = None
        read_at = time.monotonic()
        token: str | None = None
        if l2 is not None:
            found = await l2.read(key)
            if found is not None:
                raw, redis_seq = found
                if raw is not None:
                    hit = await self._from_redis(key, start_seq, raw)
                    if hit is not None:
                        return hit
                self._counters.redis_misses += 1
                if lock:
                    token = uuid.uuid4().hex
                    locked = await l2.try_lock(key, token, self._options.lock_ttl)
                    if not locked:
                        token = None
                    if locked is False:  # another process is loading: wait for its fill
                        hit = await self._await_peer(key, start_seq, l2)
                        if hit is not None:
                            return hit
        try:
            return await self._load(key, tags, start_seq, loader, ttl, redis_seq, read_at)
        finally:
            if token is not None and l2 is not None:
                await l2.unlock(key, token)

    async def _from_redis(self, key: str, start_seq: int, raw: bytes) -> Outcome[V] | None:
        """An L2 entry as a hit (filling memory), or None if it is corrupt or expired."""
        try:
            envelope = unpack_envelope(raw)
            value = None if envelope.payload is None else self._codec.decode(envelope.payload)
        except Exception:  # whatever the codec raises on bad input: a miss, never an error
            self._counters.redis_corrupt += 1
            if self._l2 is not None:
                await self._l2.discard_if_equal(key, raw)
            return None
        remaining = envelope.remaining()
        if remaining <= 0:  # the writer's clock is ahead of ours; Redis drops it soon
            return None
        self._counters.redis_hits += 1
        found = envelope.payload is not None
        size = len(envelope.payload or b"")
        entry = MemoryEntry(value, found, 0.0, size, envelope.tags)
        self._store(key, entry, remaining, start_seq)
        return CacheResult(value, "redis", remaining, found), envelope.tags

    async def _await_peer(self, key: str, start_seq: int, l2: RedisTier) -> Outcome[V] | None:
        """Poll Redis while another process holds the key's lock: its value, or None to load."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.lock_wait
        delay = 0.005
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            peeked = await l2.peek_locked(key)
            if peeked is None:
                return None
            raw, locked = peeked
            if raw is not None:
                hit = await self._from_redis(key, start_seq, raw)
                if hit is not None:
                    return hit
            if not locked:  # the holder failed, or its fill was refused as stale
                return None
        return None

    async def _load(
        self,
        key: str,
        tags: tuple[str, ...],
        start_seq: int,
        loader: Loader[V],
        ttl: float | None,
        redis_seq: int | None,
        read_at: float,
    ) -> Outcome[V]:
        loaded, tags, loaded_ttl = await self.call_loader(loader, tags)
        value: V | None
        if isinstance(loaded, NotFoundMarker):
            value, found, payload = None, False, None
            seconds = _first(loaded_ttl, self._options.negative_ttl)
        else:
            value, found, payload = loaded, True, self._codec.encode(loaded)
            seconds = _first(loaded_ttl, ttl, self._options.ttl)
        seconds = self._jittered(seconds)
        if seconds <= 0:  # a TTL of 0 means "do not cache this one"
            return CacheResult(value, "database", 0.0, found), tags
        cached_for = 0.0
        if (
            self._l2 is not None
            and redis_seq is not None
            and time.monotonic() - read_at < self._options.fill_deadline
        ):
            envelope = pack_envelope(payload, time.time() + seconds, tags)
            filled = await self._l2.fill(key, envelope, seconds, tags, redis_seq)
            if filled is FillResult.STALE:
                self._counters.fills_rejected += 1
                return CacheResult(value, "database", 0.0, found), tags
            if filled is FillResult.STORED:
                cached_for = seconds
        entry = MemoryEntry(value, found, 0.0, len(payload or b""), tags)
        cached_for = max(cached_for, self._store(key, entry, seconds, start_seq))
        return CacheResult(value, "database", cached_for, found), tags

    def _jittered(self, seconds: float) -> float:
        # Spread expiries so that keys filled together do not all miss together.
        return seconds * self._random.uniform(1 - self._options.jitter, 1 + self._options.jitter)

    def _store(self, key: str, entry: MemoryEntry[V], ttl: float, start_seq: int) -> float:
        """Put a fill into memory for `ttl` seconds unless an invalidation overtook it.

        Returns how long it stays there (0 if not stored).
        """
        if self._log.touched(key, entry.tags, after=start_seq, upto=self._log.seq):
            self._counters.fills_rejected += 1
            return 0.0
        if self._degraded():
            ttl = min(ttl, self._options.degraded_ttl)
        if ttl <= 0:
            return 0.0
        entry.expires_at = self._clock() + ttl
        return ttl if self._memory.put(key, entry) else 0.0


def _first(*choices: float | None) -> float:
    return next(choice for choice in choices if choice is not None)
