"""The L2 tier: one namespace's entries, tag sets, invalidation markers and locks in Redis.

Key layout for namespace `ns` under the installation's prefix `p` (`heron` by default; the
value keys are the only ones under `p:cache:`, so a namespace can be cleared or globbed with
one SCAN pattern):

    p:cache:<ns>:<key>          an entry (msgpack envelope), with PX expiry
    p:cache-tag:<ns>:<tag>      SET of keys carrying the tag, expiring after its last member
    p:cache-seq:<ns>            the namespace's invalidation sequence (never expires)
    p:cache-inv:<ns>:<name>     sequence of the last invalidation of `k:<key>`, `t:<tag>` or
                                `*` (everything), kept `marker_ttl` seconds
    p:cache-lock:<ns>:<key>     the single loader's lock for a hot key
    p:cache-bus:<ns>            the pub/sub channel for invalidations

The race guard: a reader takes the sequence in the same MGET as its lookup, before its loader
starts; an invalidation bumps the sequence and stamps markers on what it touches; the fill
script stores only if no marker newer than the reader's sequence covers the key or its tags.
All of this is checked inside Redis, atomically, so it holds across processes.

Every method swallows Redis errors (returning None or False) and opens a short circuit breaker,
so a dead Redis costs one timeout per `breaker_seconds`, not one per request.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.exceptions import MaxConnectionsError

from heron_common.redis.breaker import breaker_for
from heron_common.redis.client import REDIS_ERRORS

logger = logging.getLogger("heron.cache")

T = TypeVar("T")

_FILL = """
local start = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current < start then return 0 end
if current > start then
  local mp = ARGV[4]
  local function newer(name)
    local seen = redis.call('GET', mp .. name)
    return seen and tonumber(seen) > start
  end
  if newer('*') or newer('k:' .. ARGV[6]) then return 0 end
  for i = 8, #ARGV do
    if newer('t:' .. ARGV[i]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
local ttl = tonumber(ARGV[7])
for i = 8, #ARGV do
  local set = ARGV[5] .. ARGV[i]
  redis.call('SADD', set, ARGV[6])
  if redis.call('PTTL', set) < ttl then redis.call('PEXPIRE', set, ttl) end
end
return 1
"""

_INVALIDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- Start from the clock (in ms) rather than 0, so the sequence still grows if Redis lost it.
  local now = redis.call('TIME')
  redis.call('SET', KEYS[1], now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000)))
end
-- As a decimal string: Lua would print a large number in exponent notation.
local seq = string.format('%d', redis.call('INCR', KEYS[1]))
local vp, tp, mp, mttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if ARGV[7] == '1' then redis.call('SET', mp .. '*', seq, 'PX', mttl) end
local nkeys = tonumber(ARGV[8])
for i = 9, 8 + nkeys do
  redis.call('SET', mp .. 'k:' .. ARGV[i], seq, 'PX', mttl)
  redis.call('UNLINK', vp .. ARGV[i])
end
for i = 9 + nkeys, #ARGV do
  local set = tp .. ARGV[i]
  redis.call('SET', mp .. 't:' .. ARGV[i], seq, 'PX', mttl)
  for _, member in ipairs(redis.call('SMEMBERS', set)) do redis.call('UNLINK', vp .. member) end
  redis.call('UNLINK', set)
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return seq
"""

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class FillResult(enum.Enum):
    """What became of a fill."""

    STORED = "stored"
    STALE = "stale"  # an invalidation touched the key or a tag after the reader started
    UNAVAILABLE = "unavailable"


def value_prefix(prefix: str, namespace: str) -> str:
    """Where a namespace's entries are in Redis: `<prefix>:cache:<namespace>:<key>`."""
    return f"{prefix}:cache:{namespace}:"


class RedisTier:
    """One namespace's L2 operations, each a single round trip, each failing soft."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        *,
        prefix: str,
        marker_ttl: float,
        breaker_seconds: float,
    ) -> None:
        self.client = client
        self.value_prefix = value_prefix(prefix, namespace)
        self.tag_prefix = f"{prefix}:cache-tag:{namespace}:"
        self.marker_prefix = f"{prefix}:cache-inv:{namespace}:"
        self.lock_prefix = f"{prefix}:cache-lock:{namespace}:"
        self.seq_key = f"{prefix}:cache-seq:{namespace}"
        self.channel = f"{prefix}:cache-bus:{namespace}"
        self.marker_ttl_ms = int(marker_ttl * 1000)
        # Shared with everything else on the same client (the rate limiter, other namespaces).
        self.breaker = breaker_for(client, seconds=breaker_seconds)
        self._degraded = False
        self._fill = client.register_script(_FILL)
        self._invalidate = client.register_script(_INVALIDATE)
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)
        self.errors = 0

    @property
    def available(self) -> bool:
        """False while the breaker is open (Redis failed within the last `breaker_seconds`)."""
        return self.breaker.allows()

    def reset_breaker(self) -> None:
        """Redis answered elsewhere (e.g. the bus resubscribed): stop skipping it."""
        self.breaker.reset()
        self._degraded = False

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T | None:
        if not self.breaker.allows():
            return None
        probe = self.breaker.begin()
        try:
            return await self._attempts(make, probe)
        finally:
            self.breaker.end(probe)

    async def _attempts(self, make: Callable[[], Awaitable[T]], probe: bool) -> T | None:
        for attempt in (1, 2):
            try:
                result = await make()
            except MaxConnectionsError:
                # The local pool is exhausted: Redis itself is fine, so skip it for this call.
                self.errors += 1
                return None
            except redis.ConnectionError as exc:
                if attempt == 1:
                    # Likely a pooled connection that died with a Redis restart or a dropped
                    # link (redis-py does not always check them at checkout): drop the idle
                    # ones and try once more on a fresh connection. A refused connect fails
                    # again at once, so a dead Redis costs nothing more.
                    await drop_idle_connections(self.client)
                    continue
                self._failed(exc)
            except REDIS_ERRORS as exc:
                self._failed(exc)
            else:
                self.breaker.succeeded(probe)
                if self._degraded and self.breaker.closed:
                    self._degraded = False
                return result
            break
        return None

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self._degraded:
            logger.warning(
                "redis unavailable; cache runs on memory and loaders",
                extra={"error": type(exc).__name__},
            )
            self._degraded = True
        self.breaker.failed()

    async def read(self, key: str) -> tuple[bytes | None, int] | None:
        """The stored envelope (or None) and the current invalidation sequence; None if down."""
        found = await self._call(lambda: self.client.mget(self.value_prefix + key, self.seq_key))
        if found is None:
            return None
        raw, seq = found
        return _as_bytes(raw), int(seq or 0)

    async def fill(
        self, key: str, envelope: bytes, ttl: float, tags: Sequence[str], start_seq: int
    ) -> FillResult:
        """Store an entry loaded by a reader that saw `start_seq`, unless it is now stale."""
        ttl_ms = max(1, int(ttl * 1000))
        args: list[Any] = [start_seq, ttl_ms, envelope, self.marker_prefix, self.tag_prefix, key]
        # A tag set outlives its longest-lived member, so a tag invalidation always finds it.
        args.append(ttl_ms + 1000)
        args.extend(tags)
        stored = await self._call(
            lambda: self._fill(keys=[self.value_prefix + key, self.seq_key], args=args)
        )
        if stored is None:
            return FillResult.UNAVAILABLE
        return FillResult.STORED if int(stored) else FillResult.STALE

    async def discard_if_equal(self, key: str, raw: bytes) -> None:
        """Delete a corrupt entry, unless someone has replaced it meanwhile."""
        await self._call(lambda: self._delete_if_equal(keys=[self.value_prefix + key], args=[raw]))

    async def invalidate(
        self,
        keys: Sequence[str],
        tags: Sequence[str],
        *,
        everything: bool,
        message: bytes | None,
    ) -> bool:
        """Stamp markers, delete the keys and the members of the tags, then publish `message`.

        All in one script, so other processes hear of the invalidation only once the entries are
        gone from Redis (and cannot refill their memory from them). False if Redis is down.
        """
        args: list[Any] = [
            self.value_prefix,
            self.tag_prefix,
            self.marker_prefix,
            self.marker_ttl_ms,
            self.channel,
            message or b"",
            "1" if everything else "0",
            len(keys),
            *keys,
            *tags,
        ]
        done = await self._call(lambda: self._invalidate(keys=[self.seq_key], args=args))
        if done is None:
            return False
        if message:
            await self.fence()
        return True

    async def fence(self) -> None:
        """Return once every subscriber's copy of what was just published is in its socket.

        Redis writes a command's replies in the pass before it next waits for input, and that
        pass may write the publisher's reply before the subscribers' messages (Redis 7 queues
        the clients to write to newest first). A command sent after the reply arrived is read
        in a later round, so its answer comes after every one of those writes: the writer may
        then acknowledge its write, and a reader it tells can no longer reach a process before
        that process's invalidation does (heron_common.cache.bus)."""
        await self._call(self.client.ping)

    async def delete_matching(self, pattern: str) -> bool:
        """Delete the entries whose key matches a glob, with SCAN (never KEYS); False if down."""
        return await self._scan_delete(self.value_prefix + pattern)

    async def delete_namespace(self) -> bool:
        """Delete every entry and tag set of the namespace."""
        return await self._scan_delete(self.value_prefix + "*") and await self._scan_delete(
            self.tag_prefix + "*"
        )

    async def _scan_delete(self, match: str) -> bool:
        async def run() -> bool:
            batch: list[bytes] = []
            async for name in self.client.scan_iter(match=match, count=500):
                batch.append(name)
                if len(batch) >= 500:
                    await self.client.unlink(*batch)
                    batch.clear()
            if batch:
                await self.client.unlink(*batch)
            return True

        return bool(await self._call(run))

    async def publish(self, message: bytes) -> bool:
        """Broadcast an invalidation message on the namespace's channel; False if down."""
        if await self._call(lambda: self.client.publish(self.channel, message)) is None:
            return False
        await self.fence()
        return True

    async def count_entries(self) -> int | None:
        """How many entries the namespace holds in Redis (a SCAN: for admin use only)."""

        async def run() -> int:
            return sum(
                [1 async for _ in self.client.scan_iter(match=self.value_prefix + "*", count=1000)]
            )

        return await self._call(run)

    async def try_lock(self, key: str, token: str, ttl: float) -> bool | None:
        """Take the key's loader lock; None if Redis is down."""

        async def run() -> bool:
            got = await self.client.set(self.lock_prefix + key, token, nx=True, px=int(ttl * 1000))
            return bool(got)

        return await self._call(run)

    async def peek_locked(self, key: str) -> tuple[bytes | None, bool] | None:
        """The stored envelope and whether the lock is still held; None if Redis is down."""
        found = await self._call(
            lambda: self.client.mget(self.value_prefix + key, self.lock_prefix + key)
        )
        if found is None:
            return None
        raw, holder = found
        return _as_bytes(raw), holder is not None

    async def unlock(self, key: str, token: str) -> None:
        """Release the key's lock if we still hold it (it may have expired and been retaken)."""
        await self._call(lambda: self._delete_if_equal(keys=[self.lock_prefix + key], args=[token]))


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # The client does not decode responses; a str only comes from a client that does.
    return value.encode() if isinstance(value, str) else value


async def drop_idle_connections(client: redis.Redis) -> None:
    """Close the pool's idle connections, which may all be dead after one was found dead."""
    with contextlib.suppress(*REDIS_ERRORS):
        await client.connection_pool.disconnect(inuse_connections=False)
