"""Invalidations: what they cover, their bus messages, this process's log, the outbox to Redis."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

import msgpack  # type: ignore[import-untyped]

from heron_common.cache.redis import RedisTier


@dataclass(slots=True)
class Invalidation:
    """What one invalidation covers: keys, tags, key globs, or the whole namespace."""

    keys: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()
    everything: bool = False
    seq: int = 0

    def covers(self, key: str, tags: Iterable[str]) -> bool:
        return (
            self.everything
            or key in self.keys
            or not self.tags.isdisjoint(tags)
            or any(fnmatchcase(key, pattern) for pattern in self.patterns)
        )

    def to_message(self, origin: str) -> bytes:
        body = {
            "o": origin,
            "k": sorted(self.keys),
            "t": sorted(self.tags),
            "p": list(self.patterns),
            "a": self.everything,
        }
        return bytes(msgpack.packb(body, use_bin_type=True))

    @classmethod
    def from_message(cls, data: bytes) -> tuple[str, Invalidation]:
        """Parse a bus message; raises `ValueError` on anything malformed."""
        try:
            body = msgpack.unpackb(data, raw=False)
            origin, keys, tags = body["o"], body["k"], body["t"]
            patterns, everything = body["p"], body["a"]
        except Exception as exc:  # garbage in any shape
            raise ValueError("malformed invalidation message") from exc
        names = [*keys, *tags, *patterns]
        if not isinstance(origin, str) or not all(isinstance(name, str) for name in names):
            raise ValueError("malformed invalidation message")
        return origin, cls(frozenset(keys), frozenset(tags), tuple(patterns), bool(everything))


class InvalidationLog:
    """Numbers this process's invalidations and remembers the recent ones, for the race guard.

    A fill notes `seq` when its lookup begins; before storing it asks `touched` whether an
    invalidation recorded since then covers its key or tags.
    """

    def __init__(self, length: int = 4096) -> None:
        self.seq = 0
        self._recent: deque[Invalidation] = deque(maxlen=length)

    def record(self, invalidation: Invalidation) -> None:
        self.seq += 1
        invalidation.seq = self.seq
        self._recent.append(invalidation)

    def touched(self, key: str, tags: Iterable[str], *, after: int, upto: int) -> bool:
        """Did an invalidation numbered in (after, upto] cover `key` or one of `tags`?"""
        if upto <= after:
            return False
        if not self._recent or self._recent[0].seq > after + 1:
            return True  # the log has forgotten part of the window: assume the worst
        tags = tuple(tags)
        for invalidation in reversed(self._recent):
            if invalidation.seq <= after:
                break
            if invalidation.seq <= upto and invalidation.covers(key, tags):
                return True
        return False


class Outbox:
    """Invalidations on their way to Redis, kept in order while Redis cannot be reached.

    Sends are serialized so that a replayed old invalidation never lands after a newer one.
    When too many pile up, they collapse into one "clear the namespace".
    """

    def __init__(self, l2: RedisTier, origin: str, max_pending: int = 256) -> None:
        self._l2 = l2
        self._origin = origin
        self._max_pending = max_pending
        self._pending: list[Invalidation] = []
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    async def send(self, invalidation: Invalidation) -> None:
        """Send `invalidation` after any pending ones, or keep it if Redis is unreachable."""
        async with self._lock:
            if not await self._flush() or not await self._send(invalidation):
                self._keep(invalidation)

    async def retry(self) -> None:
        """Send what is pending, if anything (cheap when nothing is)."""
        if self._pending:
            async with self._lock:
                await self._flush()

    async def _flush(self) -> bool:
        while self._pending:
            if not await self._send(self._pending[0]):
                return False
            self._pending.pop(0)
        return True

    def _keep(self, invalidation: Invalidation) -> None:
        if len(self._pending) >= self._max_pending:
            self._pending = [Invalidation(everything=True)]
        else:
            self._pending.append(invalidation)

    async def _send(self, invalidation: Invalidation) -> bool:
        l2 = self._l2
        message = invalidation.to_message(self._origin)
        if not (invalidation.everything or invalidation.patterns):
            keys, tags = sorted(invalidation.keys), sorted(invalidation.tags)
            return await l2.invalidate(keys, tags, everything=False, message=message)
        # Markers first (refusing older fills), then the SCAN deletes, then the broadcast, so
        # no process refills its memory from an entry about to be deleted.
        if not await l2.invalidate((), (), everything=True, message=None):
            return False
        if invalidation.everything:
            deleted = await l2.delete_namespace()
        else:
            deleted = all([await l2.delete_matching(p) for p in invalidation.patterns])
        return deleted and await l2.publish(message)
