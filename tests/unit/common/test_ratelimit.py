"""The rate limiter's arithmetic on its in-process backend, headers, bounds and Redis breaker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any, cast

import pytest
import redis.asyncio as redis
from heron_common.redis.ratelimit import Decision, RateLimiter

WINDOW = 60
LIMIT = 10


class FakeClock:
    """Seconds that only move when told to; starts on a window boundary."""

    def __init__(self, now: float = 3600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> RateLimiter:
    return RateLimiter(None, clock=clock)


async def hit(limiter: RateLimiter, key: str = "login:a@example.com", cost: int = 1) -> Decision:
    return await limiter.hit(key, limit=LIMIT, window_seconds=WINDOW, cost=cost)


async def test_allows_exactly_the_limit_then_denies(limiter: RateLimiter) -> None:
    decisions = [await hit(limiter) for _ in range(LIMIT)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(LIMIT - 1, -1, -1))
    assert all(d.retry_after == 0 for d in decisions)

    denied = await hit(limiter)
    assert not denied.allowed
    assert denied.remaining == 0
    assert denied.retry_after >= 1
    assert denied.limit == LIMIT


async def test_the_window_slides(limiter: RateLimiter, clock: FakeClock) -> None:
    for _ in range(LIMIT):
        await hit(limiter)
    # At the next window's start a fixed window would allow 10 again; the sliding window still
    # weighs all of the last minute's hits.
    clock.advance(WINDOW)
    assert not (await hit(limiter)).allowed
    # A tenth into it, a tenth of those hits has slid out: exactly one more fits.
    clock.advance(WINDOW / 10)
    assert (await hit(limiter)).allowed
    assert not (await hit(limiter)).allowed
    # Two windows on, everything counted has slid out.
    clock.advance(2 * WINDOW)
    assert all([(await hit(limiter)).allowed for _ in range(LIMIT)])


async def test_retry_after_is_exact_and_denied_hits_are_not_counted(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    for _ in range(LIMIT):
        await hit(limiter)
    denied = await hit(limiter)
    # 60 s to the next window, then 6 s for the full window's weight to fade to 9 of 10.
    assert denied.retry_after == 66
    for _ in range(20):
        assert not (await hit(limiter)).allowed
    clock.advance(65.9)
    assert not (await hit(limiter)).allowed
    clock.advance(0.1)
    assert (await hit(limiter)).allowed


async def test_retry_after_while_the_previous_window_fades(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    for _ in range(LIMIT):
        await hit(limiter)
    clock.advance(WINDOW + 30)  # previous window weighs 10 * 30/60 = 5
    assert all([(await hit(limiter)).allowed for _ in range(5)])
    denied = await hit(limiter)
    assert not denied.allowed
    # 5 + 10 * (30 - t)/60 <= 9 first at t = 6.
    assert denied.retry_after == 6
    clock.advance(6)
    assert (await hit(limiter)).allowed


async def test_peek_does_not_count(limiter: RateLimiter) -> None:
    for _ in range(3):
        peeked = await limiter.peek("k", limit=LIMIT, window_seconds=WINDOW)
        assert peeked.allowed
        assert peeked.remaining == LIMIT
    for _ in range(LIMIT):
        await hit(limiter, "k")
    peeked = await limiter.peek("k", limit=LIMIT, window_seconds=WINDOW)
    assert not peeked.allowed
    assert peeked.retry_after >= 1
    assert limiter.local_keys == 1


async def test_peek_alone_stores_nothing(limiter: RateLimiter) -> None:
    await limiter.peek("k", limit=LIMIT, window_seconds=WINDOW)
    assert limiter.local_keys == 0


async def test_cost(limiter: RateLimiter) -> None:
    assert [(await hit(limiter, cost=3)).remaining for _ in range(3)] == [7, 4, 1]
    denied = await hit(limiter, cost=3)
    assert not denied.allowed
    assert denied.remaining == 1
    assert (await hit(limiter, cost=1)).allowed
    too_big = await hit(limiter, "other", cost=LIMIT + 1)
    assert not too_big.allowed
    assert too_big.retry_after >= 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0, "window_seconds": 60},
        {"limit": 1, "window_seconds": 0},
        {"limit": 1, "window_seconds": 60, "cost": 0},
    ],
)
async def test_nonsense_policies_are_programming_errors(
    limiter: RateLimiter, kwargs: dict[str, int]
) -> None:
    with pytest.raises(ValueError):
        await limiter.hit("k", **kwargs)


async def test_keys_and_policies_count_apart(limiter: RateLimiter) -> None:
    for _ in range(LIMIT):
        await hit(limiter, "login:a@example.com")
    assert (await hit(limiter, "login:b@example.com")).allowed
    # The same key under another policy has its own count.
    assert (await limiter.hit("login:a@example.com", limit=LIMIT + 1, window_seconds=60)).allowed
    assert (await limiter.hit("login:a@example.com", limit=LIMIT, window_seconds=61)).allowed


async def test_reset_forgets_the_key(limiter: RateLimiter) -> None:
    for _ in range(LIMIT):
        await hit(limiter)
    await limiter.hit("login:a@example.com", limit=1, window_seconds=5)
    await hit(limiter, "login:other")
    await limiter.reset("login:a@example.com")
    assert (await hit(limiter)).remaining == LIMIT - 1
    assert (await limiter.hit("login:a@example.com", limit=1, window_seconds=5)).allowed
    assert (await hit(limiter, "login:other")).remaining == LIMIT - 2
    await limiter.reset("never seen")


async def test_headers_when_allowed(limiter: RateLimiter) -> None:
    decision = await hit(limiter)
    # The hit weighs until the end of the next window: 60 + 60 s from a window's start.
    assert decision.headers() == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "9",
        "RateLimit-Reset": "120",
        "RateLimit-Policy": "10;w=60",
    }


async def test_headers_when_denied(limiter: RateLimiter, clock: FakeClock) -> None:
    clock.advance(15)
    for _ in range(LIMIT):
        await hit(limiter)
    headers = (await hit(limiter)).headers()
    assert headers == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "105",
        "RateLimit-Policy": "10;w=60",
        "Retry-After": "51",
    }


def test_headers_round_up_and_never_go_below_their_floors() -> None:
    decision = Decision(allowed=False, limit=5, remaining=0, reset_after=0.2, retry_after=0)
    assert decision.headers() == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
        "Retry-After": "1",
    }
    fresh = Decision(allowed=True, limit=5, remaining=5, reset_after=0.0, retry_after=0)
    assert fresh.headers()["RateLimit-Reset"] == "0"
    assert "Retry-After" not in fresh.headers()


async def test_long_and_odd_keys_are_bounded_digests(limiter: RateLimiter) -> None:
    keys = ["x" * 1_000_000, "login:\ud800\n\x00 a@example.com", "", "login:a@example.com"]
    storage_keys = {limiter.storage_key(k) for k in keys}
    assert len(storage_keys) == len(keys)
    for storage_key in storage_keys:
        assert storage_key.startswith("heron:rl:")
        assert len(storage_key) == len("heron:rl:") + 64
        assert "example" not in storage_key
    for key in keys:
        assert (await hit(limiter, key)).allowed
    assert RateLimiter(None, "p").storage_key("k") == RateLimiter(None, "p").storage_key("k")
    assert RateLimiter(None, "p").storage_key("k").startswith("p:")


async def test_memory_is_capped(clock: FakeClock) -> None:
    limiter = RateLimiter(None, clock=clock, max_local_keys=100)
    for i in range(250):
        await hit(limiter, f"ip:{i}")
    assert limiter.local_keys == 100
    # The most recently counted keys are the ones kept.
    assert (await limiter.peek("ip:249", limit=LIMIT, window_seconds=WINDOW)).remaining == 9
    assert (await limiter.peek("ip:0", limit=LIMIT, window_seconds=WINDOW)).remaining == 10


async def test_expired_keys_are_pruned(limiter: RateLimiter, clock: FakeClock) -> None:
    for i in range(50):
        await hit(limiter, f"ip:{i}")
    clock.advance(2 * WINDOW)
    await hit(limiter, "ip:new")
    assert limiter.local_keys == 1


class FakeScript:
    """Stands in for redis-py's registered script: fails while `down`, else allows."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(
        self, keys: Sequence[str] | None = None, args: Iterable[Any] | None = None
    ) -> list[int]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        return [1, 0, 1, 0]


class FakeRedis:
    def __init__(self) -> None:
        self.script = FakeScript()
        self.deleted: list[str] = []

    def register_script(self, script: str) -> FakeScript:
        return self.script

    async def delete(self, *names: str) -> int:
        if self.script.down:
            raise redis.ConnectionError("Connection closed by server.")
        self.deleted.extend(names)
        return len(names)


@pytest.fixture
def fake_redis() -> FakeRedis:
    return FakeRedis()


@pytest.fixture
def backed(fake_redis: FakeRedis, clock: FakeClock) -> RateLimiter:
    return RateLimiter(cast("redis.Redis", fake_redis), clock=clock)


async def test_a_failing_redis_falls_back_and_is_skipped_for_a_second(
    backed: RateLimiter,
    fake_redis: FakeRedis,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = fake_redis.script
    assert (await hit(backed)).allowed
    assert script.calls == 1
    assert backed.local_keys == 1  # Redis's count, mirrored

    script.down = True
    with caplog.at_level(logging.INFO, logger="heron.ratelimit"):
        decisions = [await hit(backed) for _ in range(LIMIT + 1)]
        await backed.reset("login:b@example.com")
        # Within the breaker's second Redis is not asked again, and memory still limits,
        # carrying on from the one hit Redis had counted.
        assert script.calls == 2
        assert [d.allowed for d in decisions] == [True] * (LIMIT - 1) + [False] * 2
        clock.advance(1)
        await hit(backed)
        assert script.calls == 3
        clock.advance(1)
        script.down = False
        assert (await hit(backed)).allowed
        assert script.calls == 4
        await hit(backed)
        assert script.calls == 5

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "Redis is back; rate limits are shared again"
    ]
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "example.com" not in logged


async def test_only_one_call_probes_a_recovering_redis(
    backed: RateLimiter, fake_redis: FakeRedis, clock: FakeClock
) -> None:
    script = fake_redis.script
    script.down = True
    await hit(backed)
    clock.advance(1)
    script.gate = asyncio.Event()
    probe = asyncio.create_task(hit(backed))
    await asyncio.sleep(0)
    assert script.calls == 2
    # While the probe waits on Redis, everyone else answers from memory at once.
    others = [await hit(backed) for _ in range(5)]
    assert all(d.allowed for d in others)
    assert script.calls == 2
    script.down = False
    script.gate.set()
    assert (await probe).allowed
    await hit(backed)
    assert script.calls == 3


async def test_reset_deletes_the_redis_key(backed: RateLimiter, fake_redis: FakeRedis) -> None:
    await backed.reset("login:a@example.com")
    assert fake_redis.deleted == [backed.storage_key("login:a@example.com")]
