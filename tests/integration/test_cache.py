"""TieredCache against a real Redis: several instances in one test stand for several processes."""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlparse

import msgpack  # type: ignore[import-untyped]
import pytest
from heron_common.cache import NOT_FOUND, TieredCache
from heron_common.cache.codec import RESPONSE, CachedResponse, pack_envelope
from heron_common.cache.invalidation import Invalidation
from heron_common.redis.client import create_redis
from redis import Redis as SyncRedis
from redis.asyncio import Redis

# A closed port: connections are refused at once, as when Redis is down on its own host.
DEAD_REDIS = "redis://127.0.0.1:1/0"


class TcpProxy:
    """A TCP relay to Redis that can be cut (every connection dropped, new ones refused)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self.frozen = False  # connections stay open but nothing gets through (a half-open link)

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.add(upstream_writer)
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            self._writers -= {writer, upstream_writer}
            self._handlers.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self.frozen:
                    writer.write(data)
                    await writer.drain()
        except OSError:  # the other side is gone
            pass
        finally:
            writer.close()


class MakeCache(Protocol):
    def __call__(
        self, *, url: str | None = None, **options: Any
    ) -> Awaitable[TieredCache[Any]]: ...


async def eventually(check: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Poll until `check()` holds, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.002)


class Source:
    """A fake database: a dict, and a count of reads."""

    def __init__(self, **rows: Any) -> None:
        self.rows: dict[str, Any] = dict(rows)
        self.reads = 0

    def loader(self, key: str, delay: float = 0.0) -> Callable[[], Awaitable[Any]]:
        async def load() -> Any:
            self.reads += 1
            value = self.rows.get(key, NOT_FOUND)
            if delay:
                await asyncio.sleep(delay)
            return value

        return load


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[Redis]:
    client = create_redis(redis_url, timeout_seconds=2.0)
    assert client is not None
    yield client
    await client.aclose()


@pytest.fixture
async def namespace(admin: Redis) -> AsyncIterator[str]:
    """A namespace of its own for each test; its keys are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    keys = [key async for key in admin.scan_iter(match=f"*:cache*:{name}*")]
    if keys:
        await admin.delete(*keys)


@pytest.fixture
async def make_cache(redis_url: str, namespace: str) -> AsyncIterator[MakeCache]:
    """Build started caches, each with its own client (as each process has its own)."""
    made: list[tuple[TieredCache[Any], Redis]] = []

    async def make(*, url: str | None = None, **options: Any) -> TieredCache[Any]:
        client = create_redis(url or redis_url)
        assert client is not None
        options.setdefault("registry", None)
        cache: TieredCache[Any] = TieredCache(namespace, redis=client, **options)
        made.append((cache, client))
        await cache.start()
        if url is None:
            await eventually(lambda: cache.bus_healthy, "the bus is subscribed")
        return cache

    yield make
    for cache, client in made:
        await cache.stop()
        await client.aclose()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    parsed = urlparse(redis_url)
    relay = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    await relay.open()
    yield relay
    await relay.cut()


def value_key(namespace: str, key: str) -> str:
    return f"heron:cache:{namespace}:{key}"


async def test_fills_upward_and_another_process_reads_redis(make_cache: MakeCache) -> None:
    a, b = await make_cache(), await make_cache()
    db = Source(k={"title": "T", "raw": b"\x00\x01"})
    first = await a.get_or_load("k", db.loader("k"), ttl=60)
    assert first.source == "database"
    second = await b.get_or_load("k", db.loader("k"), ttl=60)
    assert (second.source, second.value) == ("redis", {"title": "T", "raw": b"\x00\x01"})
    assert 0 < second.ttl <= first.ttl
    third = await b.get_or_load("k", db.loader("k"))
    assert third.source == "memory"
    assert db.reads == 1
    assert b.stats()["redis"]["hits"] == 1
    assert await b.redis_entries() == 1


async def test_keys_and_channel_live_under_the_installation_prefix(
    make_cache: MakeCache, admin: Redis, namespace: str
) -> None:
    prefix = f"heron-test-{uuid.uuid4().hex[:8]}"
    a = await make_cache(redis_prefix=prefix)
    b = await make_cache(redis_prefix=prefix)
    other = await make_cache()  # another installation, same namespace: shares nothing
    db = Source(k=1)
    await a.get_or_load("k", db.loader("k"), tags=["t"])
    assert await admin.exists(f"{prefix}:cache:{namespace}:k") == 1
    assert await admin.exists(f"heron:cache:{namespace}:k") == 0
    assert (await b.get_or_load("k", db.loader("k"), tags=["t"])).source == "redis"
    assert (await other.get_or_load("k", db.loader("k"), tags=["t"])).source == "database"
    await a.invalidate(tags=["t"])
    await eventually(lambda: b.peek("k") is None, "b hears the invalidation")
    assert other.peek("k") is not None


async def test_ready_to_send_responses_round_trip_through_redis(make_cache: MakeCache) -> None:
    a, b = await make_cache(codec=RESPONSE), await make_cache(codec=RESPONSE)
    response = CachedResponse(200, ((b"content-type", b"application/json"),), b"[1,2,3]")

    async def render() -> CachedResponse:
        return response

    await a.get_or_load("GET /items", render)
    from_redis = await b.get_or_load("GET /items", render)
    assert (from_redis.source, from_redis.value) == ("redis", response)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xc1 not msgpack",
        msgpack.packb({"unexpected": "shape"}),
        msgpack.packb([99, 0, [], b""]),  # an envelope version we do not know
        pack_envelope(b"\xc1", time.time() + 60, []),  # a payload the codec cannot read
    ],
    ids=["not-msgpack", "not-an-envelope", "unknown-version", "bad-payload"],
)
async def test_a_corrupt_redis_entry_is_a_miss_and_is_deleted(
    make_cache: MakeCache, admin: Redis, namespace: str, garbage: bytes
) -> None:
    await admin.set(value_key(namespace, "k"), garbage, ex=60)
    cache = await make_cache()

    async def failing() -> str:
        raise RuntimeError("database down")

    # A miss, so the loader runs (its error is the only one the caller sees); the entry is gone.
    with pytest.raises(RuntimeError, match="database down"):
        await cache.get_or_load("k", failing)
    assert await admin.exists(value_key(namespace, "k")) == 0
    db = Source(k="good")
    result = await cache.get_or_load("k", db.loader("k"))
    assert (result.source, result.value) == ("database", "good")
    assert cache.stats()["redis"]["corrupt"] == 1
    # The garbage was replaced by a good entry, which another process can read.
    other = await make_cache()
    assert (await other.get_or_load("k", db.loader("k"))).source == "redis"


async def test_tag_invalidation_reaches_other_processes(
    make_cache: MakeCache, admin: Redis, namespace: str
) -> None:
    a, b = await make_cache(), await make_cache()
    db = Source(k="old")
    tags = ["collection:posts", "item:1"]
    await a.get_or_load("k", db.loader("k"), tags=tags)
    assert (await b.get_or_load("k", db.loader("k"), tags=tags)).source == "redis"
    assert b.peek("k") is not None

    db.rows["k"] = "new"
    await a.invalidate(tags=["collection:posts"])
    await eventually(lambda: b.peek("k") is None, "b drops its copy")
    assert await admin.get(value_key(namespace, "k")) is None
    assert await admin.exists(f"heron:cache-tag:{namespace}:collection:posts") == 0
    result = await b.get_or_load("k", db.loader("k"), tags=tags)
    assert (result.source, result.value) == ("database", "new")


async def test_key_pattern_and_namespace_invalidation_reach_other_processes(
    make_cache: MakeCache, admin: Redis, namespace: str
) -> None:
    a, b = await make_cache(), await make_cache()
    db = Source(**{"posts:1": 1, "posts:2": 2, "pages:1": 3})
    keys = list(db.rows)

    async def fill_both() -> None:
        for key in keys:
            await a.get_or_load(key, db.loader(key))
            await b.get_or_load(key, db.loader(key))

    def in_b() -> set[str]:
        return {key for key in keys if b.peek(key) is not None}

    async def in_redis() -> set[str]:
        return {key for key in keys if await admin.exists(value_key(namespace, key))}

    await fill_both()
    await a.invalidate(keys=["pages:1"])
    await eventually(lambda: in_b() == {"posts:1", "posts:2"}, "b drops pages:1")
    assert await in_redis() == {"posts:1", "posts:2"}

    await fill_both()
    await a.invalidate_pattern("posts:*")
    await eventually(lambda: in_b() == {"pages:1"}, "b drops posts:*")
    assert await in_redis() == {"pages:1"}

    await fill_both()
    await a.clear()
    await eventually(lambda: in_b() == set(), "b drops everything")
    assert await in_redis() == set()
    assert [key async for key in admin.scan_iter(match=f"heron:cache-tag:{namespace}:*")] == []


async def test_negative_entries_are_shared_and_dropped_by_a_create(make_cache: MakeCache) -> None:
    a, b = await make_cache(), await make_cache()
    db = Source()
    tags = ["collection:posts"]
    assert not (await a.get_or_load("slug:x", db.loader("slug:x"), tags=tags)).found
    negative = await b.get_or_load("slug:x", db.loader("slug:x"), tags=tags)
    assert (negative.found, negative.source) == (False, "redis")
    assert negative.ttl <= 5.5
    db.rows["slug:x"] = {"id": 1}
    await a.invalidate(tags=["collection:posts"])
    await eventually(lambda: b.peek("slug:x") is None, "b drops the negative entry")
    created = await b.get_or_load("slug:x", db.loader("slug:x"), tags=tags)
    assert (created.found, created.value) == (True, {"id": 1})


@pytest.mark.parametrize("lock", [False, True])
async def test_stampede_costs_at_most_one_load_per_process(
    make_cache: MakeCache, lock: bool
) -> None:
    a, b = await make_cache(), await make_cache()
    db = Source(hot="value")
    loader = db.loader("hot", delay=0.05)
    calls = [
        (a if i % 2 else b).get_or_load("hot", loader, tags=["t"], lock=lock) for i in range(500)
    ]
    results = await asyncio.gather(*calls)
    assert {result.value for result in results} == {"value"}
    assert a.stats()["loads"] <= 1
    assert b.stats()["loads"] <= 1
    if lock:  # the process without the lock waits for the other's fill instead of loading
        assert db.reads == 1
        assert {result.source for result in results} == {"database", "redis"}


async def test_a_failing_lock_holder_does_not_stall_the_others(make_cache: MakeCache) -> None:
    a, b = await make_cache(lock_wait=5.0), await make_cache(lock_wait=5.0)
    holding = asyncio.Event()

    async def failing() -> str:
        holding.set()
        await asyncio.sleep(0.05)
        raise RuntimeError("boom")

    async def working() -> str:
        return "value"

    first = asyncio.create_task(a.get_or_load("k", failing, lock=True))
    await holding.wait()
    started = time.monotonic()
    result = await b.get_or_load("k", working, lock=True)
    assert result.value == "value"
    assert time.monotonic() - started < 1.0  # b noticed the lock go, not the 5 s wait bound
    with pytest.raises(RuntimeError):
        await first


async def test_losing_the_subscription_flushes_memory_then_recovers(
    make_cache: MakeCache, admin: Redis
) -> None:
    cache = await make_cache()
    db = Source(k="v")
    await cache.get_or_load("k", db.loader("k"))
    assert cache.peek("k") is not None
    assert cache.stats()["bus"]["losses"] == 0

    await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    await eventually(lambda: cache.stats()["bus"]["losses"] == 1, "the loss is noticed")
    assert cache.peek("k") is None  # flushed when the loss was noticed
    # Until the bus is back, memory keeps entries only briefly, and forgets them on its return
    # (invalidations published meanwhile were missed).
    await cache.get_or_load("m", Source(m=1).loader("m"))
    meanwhile = cache.peek("m")
    await eventually(lambda: cache.bus_healthy, "the bus resubscribes")
    assert cache.stats()["bus"]["connects"] == 2
    if meanwhile is not None and meanwhile.ttl <= 1.0:  # (unless the bus was back already)
        assert cache.peek("m") is None

    # Caching resumes: the entry comes back from Redis, then from memory with its full TTL.
    assert (await cache.get_or_load("k", db.loader("k"))).source == "redis"
    hit = await cache.get_or_load("k", db.loader("k"))
    assert hit.source == "memory"
    assert hit.ttl > 200
    assert db.reads == 1


async def test_redis_outage_keeps_memory_short_and_replays_invalidations_after(
    make_cache: MakeCache, proxy: TcpProxy, redis_url: str
) -> None:
    """One process loses Redis for a while; the other keeps it. Nothing stale survives."""
    a = await make_cache(url=redis_url.replace(f":{urlparse(redis_url).port}", f":{proxy.port}"))
    await eventually(lambda: a.bus_healthy, "a subscribes through the relay")
    b = await make_cache()
    db = Source(mine="old", theirs="old")
    for key in ("mine", "theirs"):
        await a.get_or_load(key, db.loader(key), tags=[key])
        assert (await b.get_or_load(key, db.loader(key), tags=[key])).source == "redis"

    await proxy.cut()
    await eventually(lambda: not a.bus_healthy, "a notices the outage")
    assert a.peek("mine") is None
    assert a.peek("theirs") is None

    # During the outage a answers from its loader and, briefly, from memory; never an error.
    started = time.monotonic()
    for _ in range(20):
        result = await a.get_or_load("theirs", db.loader("theirs"), tags=["theirs"])
        assert result.value == "old"
        assert result.source in ("database", "memory")
        assert result.ttl <= 1.0
    # b writes: a cannot hear it, and relies on its short memory and the flush on reconnect.
    db.rows["theirs"] = "new"
    await b.invalidate(tags=["theirs"])
    # a writes: Redis cannot be told now, so a keeps the invalidation for later.
    db.rows["mine"] = "new"
    await a.invalidate(tags=["mine"])
    assert time.monotonic() - started < 1.0
    assert a.stats()["pending_invalidations"] == 1
    assert b.peek("mine") is not None

    await proxy.open()
    await eventually(lambda: a.bus_healthy, "a resubscribes")
    await eventually(lambda: b.peek("mine") is None, "a's invalidation reaches b")
    assert a.stats()["pending_invalidations"] == 0
    for cache in (a, b):
        for key in ("mine", "theirs"):
            assert (await cache.get_or_load(key, db.loader(key), tags=[key])).value == "new"


async def test_a_silent_subscription_is_noticed_by_its_pings(
    make_cache: MakeCache, proxy: TcpProxy, redis_url: str
) -> None:
    """A link that stops carrying data without closing (no RST) still counts as lost."""
    url = redis_url.replace(f":{urlparse(redis_url).port}", f":{proxy.port}")
    cache = await make_cache(url=url, bus_ping_interval=0.05)
    await eventually(lambda: cache.bus_healthy, "the bus subscribes through the relay")
    await cache.get_or_load("k", Source(k=1).loader("k"))
    await asyncio.sleep(0.3)  # six ping intervals: an idle but live subscription stays up
    assert cache.stats()["bus"]["losses"] == 0
    proxy.frozen = True
    await eventually(lambda: not cache.bus_healthy, "the silence is noticed", within=2.0)
    assert cache.peek("k") is None
    proxy.frozen = False
    await eventually(lambda: cache.bus_healthy, "the bus resubscribes")


async def test_an_invalidation_lost_to_a_hiccup_is_retried_while_the_bus_stays_up(
    make_cache: MakeCache, proxy: TcpProxy, redis_url: str
) -> None:
    url = redis_url.replace(f":{urlparse(redis_url).port}", f":{proxy.port}")
    a = await make_cache(url=url, bus_ping_interval=0.5)
    await eventually(lambda: a.bus_healthy, "a subscribes through the relay")
    b = await make_cache()
    db = Source(k="old")
    await a.get_or_load("k", db.loader("k"), tags=["t"])
    assert (await b.get_or_load("k", db.loader("k"), tags=["t"])).source == "redis"

    proxy.frozen = True  # shorter than the bus's silence limit (3 pings), longer than a timeout
    db.rows["k"] = "new"
    await a.invalidate(tags=["t"])
    proxy.frozen = False
    assert a.stats()["pending_invalidations"] == 1
    await eventually(lambda: b.peek("k") is None, "the retried invalidation reaches b")
    assert a.stats()["bus"]["losses"] == 0  # the retry came from the live bus, not a reconnect
    assert (await b.get_or_load("k", db.loader("k"), tags=["t"])).value == "new"


async def test_a_dead_pooled_connection_costs_no_miss(
    redis_url: str, namespace: str, admin: Redis
) -> None:
    """A pooled connection killed under the cache is replaced at once, not taken for an outage."""
    client = create_redis(redis_url)
    assert client is not None
    writer = TieredCache[Any](namespace, redis=client, registry=None)
    db = Source(k="v")
    try:
        await writer.get_or_load("k", db.loader("k"))
        reader = TieredCache[Any](namespace, redis=client, registry=None)
        connection_id = await client.client_id()  # the idle connection the next command takes
        await admin.client_kill_filter(_id=str(connection_id))
        result = await reader.get_or_load("k", db.loader("k"))
        assert result.source == "redis"
        assert reader.stats()["redis"]["errors"] == 0
    finally:
        await client.aclose()


async def test_an_invalidation_is_applied_before_a_request_that_arrived_with_it(
    make_cache: MakeCache, namespace: str, redis_url: str
) -> None:
    """Another process's write is acknowledged once its invalidation is published, so a read
    that follows it can reach this process in the same loop turn as the message. A handler
    started by that turn (uvicorn and grpc.aio start a task from their read callback) must
    already find the entry gone, whichever of the two sockets the loop serves first."""
    reader = await make_cache()
    await eventually(lambda: reader.bus_healthy, "the bus is subscribed")
    publisher = SyncRedis.from_url(redis_url)
    loop = asyncio.get_running_loop()
    db = Source(k="old")
    seen: list[object] = []
    handlers: list[asyncio.Task[None]] = []
    try:
        for round_ in range(20):
            await reader.get_or_load("k", db.loader("k"), tags=["t"])
            assert reader.peek("k") is not None
            served: asyncio.Future[None] = loop.create_future()
            request, client = socket.socketpair()
            request.setblocking(False)

            def on_request(
                sock: socket.socket = request, done: asyncio.Future[None] = served
            ) -> None:
                sock.recv(1)
                loop.remove_reader(sock)

                async def handle() -> None:
                    hit = reader.peek("k")
                    seen.append(None if hit is None else hit.value)
                    done.set_result(None)

                handlers.append(loop.create_task(handle()))

            loop.add_reader(request, on_request)
            # The loop is blocked meanwhile: both arrive before it looks again. The request's
            # socket is ready first in even rounds, the message's in odd ones.
            message = Invalidation(keys=frozenset({"k"})).to_message("another-process")
            if round_ % 2 == 0:
                client.send(b"x")
            publisher.publish(f"heron:cache-bus:{namespace}", message)
            time.sleep(0.01)  # noqa: ASYNC251 (the point: the loop must not look meanwhile)
            if round_ % 2 == 1:
                client.send(b"x")
            await asyncio.wait_for(served, 5)
            request.close()
            client.close()
    finally:
        publisher.close()
    assert seen == [None] * 20


async def test_garbage_on_the_bus_flushes_memory(
    make_cache: MakeCache, admin: Redis, namespace: str
) -> None:
    cache = await make_cache()
    await cache.get_or_load("k", Source(k=1).loader("k"))
    await admin.publish(f"heron:cache-bus:{namespace}", b"\xc1garbage")
    await eventually(lambda: cache.peek("k") is None, "memory is flushed")


async def test_unreachable_redis_degrades_to_memory_and_loader_quickly(
    make_cache: MakeCache,
) -> None:
    cache = await make_cache(url=DEAD_REDIS)
    strict = await make_cache(url=DEAD_REDIS, degraded_ttl=0)
    db = Source(k="v")
    started = time.monotonic()
    for _ in range(50):
        assert (await cache.get_or_load("k", db.loader("k"), lock=True)).value == "v"
        assert (await strict.get_or_load("k", db.loader("k"))).value == "v"
    await cache.invalidate(keys=["k"], tags=["t"])
    await cache.invalidate_pattern("*")
    await cache.clear()
    assert time.monotonic() - started < 1.0
    assert not cache.bus_healthy
    stats = cache.stats()
    assert stats["redis"]["errors"] >= 1
    assert stats["redis"]["available"] is False
    assert stats["pending_invalidations"] == 3
    # Memory still serves, but only briefly (no invalidations can reach it); strict never does.
    assert stats["loads"] < 50
    hit = cache.peek("k")
    assert hit is None or hit.ttl <= 1.0
    assert strict.stats()["loads"] == 50


async def test_invalidate_vs_fill_race_across_processes(make_cache: MakeCache) -> None:
    """A write plus invalidation racing slow reads: after quiescence, every cache equals the DB.

    Each run takes a fresh key, cold or already in Redis (warmed by a third process), so that
    the reads really load and fill while the write commits and invalidates.
    """
    a, b, c = await make_cache(), await make_cache(), await make_cache()
    caches = (a, b, c)
    db = Source()
    rng = random.Random(1234)
    runs = 200

    def heard() -> int:
        return sum(cache.stats()["bus"]["received"] for cache in caches)

    async def write(writer: TieredCache[Any], key: str, by: str, delay: float) -> None:
        await asyncio.sleep(delay)
        db.rows[key] = "new"  # the commit...
        # ...then the invalidation, by key, by tag, or both.
        keys, tags = [key], [f"item:{key}"]
        await writer.invalidate(keys=keys if by != "tag" else (), tags=tags if by != "key" else ())

    for run in range(runs):
        key = f"k{run}"
        tags = [f"item:{key}"]
        db.rows[key] = "old"
        if rng.random() < 0.5:
            await c.get_or_load(key, db.loader(key), tags=tags)
        read_delay = rng.uniform(0, 0.004)
        heard_before = heard()
        await asyncio.gather(
            write(
                rng.choice(caches), key, rng.choice(["key", "tag", "both"]), rng.uniform(0, 0.004)
            ),
            a.get_or_load(key, db.loader(key, read_delay), tags=tags),
            b.get_or_load(key, db.loader(key, read_delay / 2), tags=tags),
        )
        await eventually(lambda n=heard_before + 3: heard() == n, "every process hears the write")
        for cache in caches:
            cached = await cache.get_or_load(key, db.loader(key), tags=tags)
            assert cached.value == "new", (run, caches.index(cache), cached)
    # The race was really run: many fills were refused as overtaken.
    assert sum(cache.stats()["fills_rejected"] for cache in caches) > runs // 10
