"""Rate limits against a real Redis: shared across processes, atomic, expiring, and failing over."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis
from heron_common.redis.client import create_redis
from heron_common.redis.ratelimit import RateLimiter

from tests.conftest import free_port

Connect = Callable[[], RateLimiter]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = create_redis(redis_url)
    assert client is not None
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(admin: redis.Redis) -> AsyncIterator[str]:
    prefix = f"heron:test:rl:{uuid.uuid4().hex}"
    try:
        yield prefix
    finally:
        keys = [key async for key in admin.scan_iter(match=f"{prefix}:*")]
        if keys:
            await admin.delete(*keys)


@pytest.fixture
async def connect(redis_url: str, prefix: str) -> AsyncIterator[Connect]:
    """Limiters with a client each, as separate processes would have."""
    clients: list[redis.Redis] = []

    def make() -> RateLimiter:
        client = create_redis(redis_url)
        assert client is not None
        clients.append(client)
        return RateLimiter(client, prefix)

    try:
        yield make
    finally:
        for client in clients:
            await client.aclose()


async def test_the_limit_is_shared_between_processes(connect: Connect) -> None:
    first, second = connect(), connect()
    decisions = [
        await limiter.hit("login:a@example.com", limit=10, window_seconds=60)
        for limiter in [first, second] * 5
    ]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(9, -1, -1))
    for limiter in (first, second):
        denied = await limiter.hit("login:a@example.com", limit=10, window_seconds=60)
        assert not denied.allowed
        assert denied.retry_after >= 1
        assert not (await limiter.peek("login:a@example.com", limit=10, window_seconds=60)).allowed


async def test_concurrent_hits_are_counted_atomically(connect: Connect) -> None:
    limiters = [connect() for _ in range(5)]
    decisions = await asyncio.gather(
        *(
            limiters[i % len(limiters)].hit("ip:203.0.113.7", limit=10, window_seconds=60)
            for i in range(50)
        )
    )
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


async def test_keys_expire_and_hold_no_user_input(
    connect: Connect, admin: redis.Redis, prefix: str
) -> None:
    limiter = connect()
    await limiter.hit("login:a@example.com", limit=3, window_seconds=60)
    await limiter.hit("login:a@example.com", limit=3, window_seconds=5)
    storage_key = limiter.storage_key("login:a@example.com")
    # The longer policy's expiry wins: its count weighs for up to two of its windows.
    ttl = await admin.pttl(storage_key)
    assert 60_000 < ttl <= 120_000
    keys = [key async for key in admin.scan_iter(match=f"{prefix}:*")]
    assert keys == [storage_key.encode()]
    assert "example" not in repr([keys, await admin.hgetall(storage_key)])


async def test_reset_deletes_the_shared_count(connect: Connect, admin: redis.Redis) -> None:
    first, second = connect(), connect()
    for _ in range(3):
        await first.hit("login:a@example.com", limit=3, window_seconds=60)
    await second.reset("login:a@example.com")
    assert await admin.exists(first.storage_key("login:a@example.com")) == 0
    assert (await first.hit("login:a@example.com", limit=3, window_seconds=60)).remaining == 2


async def test_an_unreachable_redis_falls_back_to_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = create_redis("redis://127.0.0.1:1/0")
    assert client is not None
    limiter = RateLimiter(client)
    try:
        with caplog.at_level(logging.WARNING, logger="heron.ratelimit"):
            decisions = [
                await limiter.hit("login:a@example.com", limit=10, window_seconds=60)
                for _ in range(20)
            ]
            await limiter.reset("login:b@example.com")
    finally:
        await client.aclose()
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 10
    assert limiter.local_keys == 1
    assert len([r for r in caplog.records if r.name == "heron.ratelimit"]) == 1
    assert "example.com" not in caplog.text


class Forwarder:
    """A TCP relay to Redis on a port of our own, so a test can take 'Redis' down and up."""

    def __init__(self, port: int, target_host: str, target_port: int) -> None:
        self.port = port
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()
        self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            self.writers.discard(writer)
            writer.close()


async def test_redis_is_used_again_when_it_comes_back(
    redis_url: str, admin: redis.Redis, prefix: str
) -> None:
    kwargs = admin.connection_pool.connection_kwargs
    forwarder = Forwarder(free_port(), kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379))
    client = create_redis(f"redis://127.0.0.1:{forwarder.port}/{kwargs.get('db', 0)}")
    assert client is not None
    clock = FakeClock()
    limiter = RateLimiter(client, prefix, clock=clock)
    storage_key = limiter.storage_key("k")

    async def hit() -> bool:
        return (await limiter.hit("k", limit=100, window_seconds=60)).allowed

    async def in_redis() -> int:
        return await admin.exists(storage_key)

    try:
        assert await hit()  # nothing listens yet: memory
        assert await in_redis() == 0
        await forwarder.start()
        assert await hit()  # the breaker still holds Redis off
        assert await in_redis() == 0
        clock.now += 1
        assert await hit()
        assert await in_redis() == 1
        await forwarder.stop()
        assert await hit()  # the pooled connection breaks: memory again
        await forwarder.start()
        clock.now += 1
        assert await hit()
        assert await in_redis() == 1
        # The hits counted in memory while Redis was away were added to it once it was back.
        assert (await admin.hget(storage_key, "100/60")).split()[1] == b"5"
        assert (await limiter.peek("k", limit=100, window_seconds=60)).remaining == 95
    finally:
        await client.aclose()
        if forwarder.server is not None:
            await forwarder.stop()


async def test_a_redis_blip_forgets_none_of_this_process_hits(
    admin: redis.Redis, prefix: str
) -> None:
    kwargs = admin.connection_pool.connection_kwargs
    forwarder = Forwarder(free_port(), kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379))
    client = create_redis(f"redis://127.0.0.1:{forwarder.port}/{kwargs.get('db', 0)}")
    assert client is not None
    clock = FakeClock()
    limiter = RateLimiter(client, prefix, clock=clock)

    async def hit() -> bool:
        return (await limiter.hit("login:ip:203.0.113.9", limit=10, window_seconds=900)).allowed

    try:
        await forwarder.start()
        assert [await hit() for _ in range(6)] == [True] * 6
        assert await admin.exists(limiter.storage_key("login:ip:203.0.113.9")) == 1
        await forwarder.stop()  # Redis times out or goes away mid-attack
        assert [await hit() for _ in range(6)] == [True] * 4 + [False] * 2
        await forwarder.start()
        clock.now += 60  # the breaker lets Redis back in; it holds only six, memory ten
        assert not await hit()
    finally:
        await client.aclose()
        if forwarder.server is not None:
            await forwarder.stop()
