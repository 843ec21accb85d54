"""TieredCache without Redis: memory tier, single-flight, negatives, the race guard, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from heron_common.cache import NOT_FOUND, CacheResult, Loaded, NotFoundMarker, TieredCache
from heron_common.cache.codec import RESPONSE, CachedResponse
from prometheus_client import CollectorRegistry, generate_latest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A fake database: a dict, and a count of reads."""

    def __init__(self, **rows: Any) -> None:
        self.rows: dict[str, Any] = dict(rows)
        self.reads = 0

    def loader(self, key: str) -> Any:
        async def load() -> Any:
            self.reads += 1
            return self.rows.get(key, NOT_FOUND)

        return load


def make(**options: Any) -> TieredCache[Any]:
    options.setdefault("registry", None)
    return TieredCache("unit", **options)


async def test_read_through_then_memory_hit() -> None:
    db = Source(a={"title": "A"})
    cache = make(jitter=0)
    first = await cache.get_or_load("a", db.loader("a"))
    assert first == CacheResult({"title": "A"}, "database", 300.0)
    assert first.status == "MISS"
    second = await cache.get_or_load("a", db.loader("a"))
    assert second.source == "memory"
    assert second.status == "HIT"
    assert second.value == {"title": "A"}
    assert db.reads == 1
    stats = cache.stats()
    assert stats["loads"] == 1
    assert stats["memory"]["hits"] == 1
    assert stats["memory"]["misses"] == 1


async def test_ttl_expiry_and_remaining_ttl() -> None:
    clock = Clock()
    db = Source(a=1)
    cache = make(clock=clock, ttl=10, jitter=0)
    await cache.get_or_load("a", db.loader("a"))
    clock.now += 4
    hit = await cache.get_or_load("a", db.loader("a"))
    assert hit.source == "memory"
    assert hit.ttl == pytest.approx(6)
    assert hit.headers() == [
        (b"x-cache-status", b"HIT"),
        (b"x-cache-source", b"memory"),
        (b"x-cache-ttl", b"6"),
    ]
    clock.now += 6
    again = await cache.get_or_load("a", db.loader("a"))
    assert again.source == "database"
    assert db.reads == 2


async def test_ttl_jitter_stays_within_range() -> None:
    db = Source(x=0, **{str(i): i for i in range(300)})
    cache = make(ttl=100, jitter=0.1)
    ttls = [(await cache.get_or_load(str(i), db.loader(str(i)))).ttl for i in range(300)]
    assert all(90 <= ttl <= 110 for ttl in ttls)
    assert max(ttls) - min(ttls) > 10  # actually spread, not a constant
    per_call = await cache.get_or_load("x", db.loader("x"), ttl=1000)
    assert 900 <= per_call.ttl <= 1100


async def test_single_flight_runs_the_loader_once_for_concurrent_misses() -> None:
    calls = 0
    release = asyncio.Event()

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "value"

    cache = make()
    tasks = [asyncio.create_task(cache.get_or_load("k", slow)) for _ in range(100)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert {result.value for result in results} == {"value"}
    assert cache.stats()["loads"] == 1
    assert cache.stats()["in_flight"] == 0


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "value"

    cache = make()
    first = asyncio.create_task(cache.get_or_load("k", slow))
    second = asyncio.create_task(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert (await second).value == "value"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_loader_exception_reaches_every_waiter_and_is_not_cached() -> None:
    calls = 0
    release = asyncio.Event()

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        raise RuntimeError("database down")

    cache = make()
    tasks = [asyncio.create_task(cache.get_or_load("k", failing)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "database down" for r in results)
    assert cache.stats()["load_errors"] == 1

    async def working() -> str:
        return "fine"

    result = await cache.get_or_load("k", working)
    assert result.source == "database"
    assert result.value == "fine"


async def test_negative_entries_are_cached_briefly_and_dropped_by_their_tags() -> None:
    clock = Clock()
    db = Source()
    cache = make(clock=clock, negative_ttl=5, jitter=0)
    tags = ["collection:posts"]
    miss = await cache.get_or_load("slug:hello", db.loader("slug:hello"), tags=tags)
    assert (miss.found, miss.value, miss.source, miss.ttl) == (False, None, "database", 5)
    hit = await cache.get_or_load("slug:hello", db.loader("slug:hello"), tags=tags)
    assert (hit.found, hit.source) == (False, "memory")
    assert db.reads == 1

    # A create: the row appears, and the writer invalidates the collection after commit.
    db.rows["slug:hello"] = {"id": 1}
    await cache.invalidate(tags=["collection:posts"])
    created = await cache.get_or_load("slug:hello", db.loader("slug:hello"), tags=tags)
    assert (created.found, created.value, created.source) == (True, {"id": 1}, "database")

    # Negative entries also expire on their own, after the short TTL.
    await cache.get_or_load("slug:other", db.loader("slug:other"))
    clock.now += 5
    await cache.get_or_load("slug:other", db.loader("slug:other"))
    assert db.reads == 4


async def test_invalidation_by_key_tag_pattern_and_clear() -> None:
    db = Source(**{"posts:1": 1, "posts:2": 2, "pages:1": 3, "other": 4})
    cache = make()

    async def fill() -> None:
        await cache.get_or_load("posts:1", db.loader("posts:1"), tags=["item:1", "c:posts"])
        await cache.get_or_load("posts:2", db.loader("posts:2"), tags=["item:2", "c:posts"])
        await cache.get_or_load("pages:1", db.loader("pages:1"), tags=["c:pages"])
        await cache.get_or_load("other", db.loader("other"))

    def cached() -> set[str]:
        return {key for key in ("posts:1", "posts:2", "pages:1", "other") if cache.peek(key)}

    await fill()
    await cache.invalidate(keys=["other"])
    assert cached() == {"posts:1", "posts:2", "pages:1"}
    await cache.invalidate(tags=["item:1"])
    assert cached() == {"posts:2", "pages:1"}
    await cache.invalidate(tags=["c:posts"])
    assert cached() == {"pages:1"}
    await fill()
    await cache.invalidate_pattern("posts:*")
    assert cached() == {"pages:1", "other"}
    await cache.clear()
    assert cached() == set()
    assert cache.stats()["memory"]["entries"] == 0


async def test_a_fill_overtaken_by_an_invalidation_is_not_stored() -> None:
    db = Source(k="old")
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_read() -> str:
        value: str = db.rows["k"]  # the read happens before the write commits...
        started.set()
        await release.wait()
        return value

    cache = make()
    reader = asyncio.create_task(cache.get_or_load("k", slow_read, tags=["item:k"]))
    await started.wait()
    db.rows["k"] = "new"  # ...the write commits, then invalidates
    await cache.invalidate(tags=["item:k"])
    release.set()
    stale = await reader
    assert stale.value == "old"  # the reader began before the write: this answer is fine
    assert stale.ttl == 0  # but it was not cached
    assert cache.peek("k") is None
    assert cache.stats()["fills_rejected"] == 1
    fresh = await cache.get_or_load("k", db.loader("k"))
    assert (fresh.value, fresh.source) == ("new", "database")


@pytest.mark.parametrize("dynamic_tags", [False, True])
async def test_a_caller_arriving_after_an_invalidation_does_not_get_the_overtaken_load(
    dynamic_tags: bool,
) -> None:
    """Read-your-writes in one process: joining the old in-flight load would serve stale data."""
    db = Source(k="old")
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_read() -> Any:
        value = db.rows["k"]
        started.set()
        await release.wait()
        # With dynamic tags the cache only learns the entry's tags once the load is done.
        return Loaded(value, tags=["item:k"]) if dynamic_tags else value

    async def fast_read() -> Any:
        return db.rows["k"]

    cache = make()
    upfront = [] if dynamic_tags else ["item:k"]
    first = asyncio.create_task(cache.get_or_load("k", slow_read, tags=upfront))
    await started.wait()
    db.rows["k"] = "new"
    await cache.invalidate(tags=["item:k"])
    second = asyncio.create_task(cache.get_or_load("k", fast_read, tags=upfront))
    if not dynamic_tags:  # the overtaken load was detached: no need to wait for it
        assert (await asyncio.wait_for(second, 1.0)).value == "new"
    await asyncio.sleep(0)
    release.set()
    assert (await first).value == "old"
    assert (await second).value == "new"
    assert (await cache.get_or_load("k", fast_read)).value == "new"


async def test_loaded_sets_tags_and_ttl() -> None:
    async def load() -> Loaded[str]:
        return Loaded("v", tags=["item:7"], ttl=42)

    cache = make(jitter=0)
    result = await cache.get_or_load("slug:x", load, tags=["c:posts"])
    assert result.ttl == 42
    await cache.invalidate(tags=["item:7"])
    assert cache.peek("slug:x") is None


async def test_disabled_cache_always_loads() -> None:
    db = Source(a=1)
    cache = make(enabled=False)
    for _ in range(3):
        result = await cache.get_or_load("a", db.loader("a"))
        assert (result.value, result.source, result.status, result.ttl) == (
            1,
            "database",
            "BYPASS",
            0,
        )
    missing = await cache.get_or_load("b", db.loader("b"))
    assert (missing.found, missing.status) == (False, "BYPASS")
    assert db.reads == 4
    assert cache.stats()["loads"] == 4
    assert cache.peek("a") is None


async def test_response_values_are_served_from_memory_as_is() -> None:
    response = CachedResponse(200, ((b"content-type", b"application/json"),), b'{"a":1}')

    async def render() -> CachedResponse:
        return response

    cache: TieredCache[CachedResponse] = TieredCache("gw", codec=RESPONSE, registry=None)
    await cache.get_or_load("GET /a", render)
    hit = cache.peek("GET /a")
    assert hit is not None
    assert hit.value is response
    assert cache.stats()["memory"]["bytes"] == len(RESPONSE.encode(response))


async def test_memory_bounds_are_enforced_through_the_cache() -> None:
    async def big() -> bytes:
        return b"x" * 400

    cache = make(max_entries=100, max_bytes=1000)
    for i in range(10):
        await cache.get_or_load(f"k{i}", big)
    stats = cache.stats()["memory"]
    assert stats["bytes"] <= 1000
    assert stats["entries"] == 2
    assert stats["evictions"] == 8


def test_not_found_marker_is_a_singleton_like_value() -> None:
    assert isinstance(NOT_FOUND, NotFoundMarker)
    assert repr(NOT_FOUND) == "NOT_FOUND"


def test_rejects_bad_namespaces() -> None:
    for namespace in ("", "a b", "a*", "x" * 65):
        with pytest.raises(ValueError):
            TieredCache(namespace, registry=None)


async def test_prometheus_metrics_from_several_caches_do_not_collide() -> None:
    registry = CollectorRegistry()
    db = Source(a=1)
    caches = [TieredCache("metrics-test", registry=registry) for _ in range(2)]
    caches.append(TieredCache("metrics-other", registry=registry))  # same registry, again
    for cache in caches:
        await cache.get_or_load("a", db.loader("a"))
        await cache.get_or_load("a", db.loader("a"))
    text = generate_latest(registry).decode()
    assert 'heron_cache_hits_total{namespace="metrics-test",tier="memory"} 2.0' in text
    assert 'heron_cache_hits_total{namespace="metrics-other",tier="memory"} 1.0' in text
    assert 'heron_cache_loads_total{namespace="metrics-test"} 2.0' in text
    assert 'heron_cache_memory_entries{namespace="metrics-test"} 2.0' in text
    assert 'heron_cache_bus_healthy{namespace="metrics-test"} 1.0' in text
    del caches, cache
    import gc

    gc.collect()
    assert "metrics-test" not in generate_latest(registry).decode()
