"""Bounded LRU maps for every in-process cache: `BoundedLRU` (by entry count) and the L1 tier,
`MemoryLRU` (with TTL, bounded by entry count and by bytes, with a tag index)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """A map that keeps at most `capacity` entries, dropping the least recently used first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        """The value (now the most recently used), or None."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)


@dataclass(slots=True)
class MemoryEntry(Generic[V]):
    """One cached value. `found=False` is a cached "not found" (a negative entry)."""

    value: V | None
    found: bool
    expires_at: float  # on the LRU's clock (monotonic)
    size: int  # bytes of the serialized value
    tags: tuple[str, ...]


class MemoryLRU(Generic[V]):
    """An LRU map with per-entry expiry and a tag → keys index; every operation is O(1) per key.

    Expired entries are dropped when read; until then they count towards the bounds and are
    evicted oldest-first like any other entry.
    """

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float]) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._data: OrderedDict[str, MemoryEntry[V]] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self.bytes = 0
        self.evictions = 0
        self.expirations = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def get(self, key: str) -> MemoryEntry[V] | None:
        """The live entry for `key` (now the most recently used), or None."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._remove(key)
            self.expirations += 1
            return None
        self._data.move_to_end(key)
        return entry

    def put(self, key: str, entry: MemoryEntry[V]) -> bool:
        """Store `entry`, evicting least recently used entries to stay within both bounds.

        An entry larger than the whole byte budget is not stored (and any older value under
        the key is dropped), rather than flushing everything else to make room.
        """
        self._remove(key)
        if entry.size > self.max_bytes or self.max_entries <= 0:
            return False
        self._data[key] = entry
        self.bytes += entry.size
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._remove(oldest)
            self.evictions += 1
        return True

    def discard(self, keys: Iterable[str]) -> int:
        """Drop these keys; returns how many were present."""
        return sum(self._remove(key) for key in keys)

    def discard_tags(self, tags: Iterable[str]) -> int:
        """Drop every entry carrying any of these tags."""
        dropped = 0
        for tag in tags:
            dropped += self.discard(list(self._by_tag.get(tag, ())))
        return dropped

    def discard_matching(self, pattern: str) -> int:
        """Drop every key matching a glob (`*`, `?`, `[...]`); a scan, for admin use."""
        return self.discard([key for key in self._data if fnmatchcase(key, pattern)])

    def clear(self) -> int:
        """Drop everything; returns how many entries there were."""
        dropped = len(self._data)
        self._data.clear()
        self._by_tag.clear()
        self.bytes = 0
        return dropped

    def _remove(self, key: str) -> bool:
        entry = self._data.pop(key, None)
        if entry is None:
            return False
        self.bytes -= entry.size
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
        return True
