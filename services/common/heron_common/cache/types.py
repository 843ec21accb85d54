"""What a cache read returns, and what a loader may answer: values, "not found", tags, TTLs."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Literal, NamedTuple, TypeVar

V = TypeVar("V")

Source = Literal["memory", "redis", "database"]
Status = Literal["HIT", "MISS", "BYPASS"]


class NotFoundMarker:
    """The type of `NOT_FOUND`."""

    def __repr__(self) -> str:
        return "NOT_FOUND"


NOT_FOUND: Final = NotFoundMarker()
"""What a loader returns for "no such thing": cached briefly, as a negative entry."""


@dataclass(frozen=True, slots=True)
class Loaded(Generic[V]):
    """A loader's answer with tags known only after loading, or a TTL of its own."""

    value: V | NotFoundMarker
    tags: Sequence[str] = ()
    ttl: float | None = None


class CacheResult(NamedTuple, Generic[V]):
    """A value and where it came from. `found` is False for a (cached) "not found"."""

    value: V | None
    source: Source
    ttl: float  # seconds the value stays cached; 0 when it was not cached
    found: bool = True
    bypass: bool = False  # the cache is disabled

    @property
    def status(self) -> Status:
        """`X-Cache-Status`: HIT from memory or Redis, MISS from the loader, BYPASS if off."""
        if self.bypass:
            return "BYPASS"
        return "MISS" if self.source == "database" else "HIT"

    def headers(self) -> list[tuple[bytes, bytes]]:
        """`X-Cache-Status`, `X-Cache-Source` and `X-Cache-TTL` as raw ASGI header pairs."""
        return list(_cache_headers(self.status, self.source, max(0, int(self.ttl))))


@functools.lru_cache(maxsize=4096)
def _cache_headers(status: str, source: str, ttl: int) -> tuple[tuple[bytes, bytes], ...]:
    # A few hundred combinations (a TTL is whole seconds): built once each.
    return (
        (b"x-cache-status", status.encode()),
        (b"x-cache-source", source.encode()),
        (b"x-cache-ttl", str(ttl).encode()),
    )


Loader = Callable[[], Awaitable["V | Loaded[V] | NotFoundMarker"]]
