"""Sliding-window rate limits, shared through Redis and kept in process memory without it.

The algorithm is the sliding-window counter: a key's hits are counted in fixed windows, and the
previous window's count is weighted by how much of it the sliding window still covers. With
`limit` 10 per 60 s, 6 hits in the previous minute and 2 so far in this one, 15 s into it, the
estimate is 6 * 45/60 + 2 = 6.5, so 3 more hits fit. All arithmetic is on integers (counts and
milliseconds), so exactly `limit` hits fit in a fresh window, with no rounding drift.

Each key is one Redis hash, updated by one Lua script that reads, counts and sets the expiry in
one atomic step on the server's clock, so any number of processes share a limit exactly. When
Redis is absent or failing, the same arithmetic runs on this process's memory: limits then hold
per process, and no caller ever sees a Redis error. Memory mirrors each key's last shared count,
so a blip (a timeout under load, a Redis restart) carries on from it instead of from zero, and
the hits counted in memory meanwhile are added to Redis's count once it answers again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import redis.asyncio as redis
from redis.exceptions import MaxConnectionsError

from heron_common.errors import ResourceExhausted
from heron_common.redis.breaker import BREAKER_SECONDS, Breaker, breaker_for
from heron_common.redis.client import REDIS_ERRORS

logger = logging.getLogger("heron.ratelimit")

DEFAULT_PREFIX = "heron:rl"
MAX_LOCAL_KEYS = 100_000

# KEYS[1]: the key's hash. ARGV: the policy's field, limit, window (ms), cost, "1" to count,
# and hits counted elsewhere while Redis was unreachable, added before the check.
# A field holds "<window index> <count in that window> <count in the window before>".
# Returns {allowed, previous count, current count, ms into the current window}, the counts as
# they are after this call.
_SCRIPT = """
local field = ARGV[1]
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local index = math.floor(now / window)
local elapsed = now - index * window
local curr, prev = 0, 0
local stored = redis.call('HGET', KEYS[1], field)
if stored then
  local i, c, p = string.match(stored, '^(%d+) (%d+) (%d+)$')
  i = tonumber(i)
  if i == index then
    curr, prev = tonumber(c), tonumber(p)
  elseif i == index - 1 then
    prev = tonumber(c)
  end
end
local owed = tonumber(ARGV[6] or '0')
curr = curr + owed
local allowed = prev * (window - elapsed) + (curr + cost) * window <= limit * window
if allowed and ARGV[5] == '1' then
  curr = curr + cost
end
if owed > 0 or (allowed and ARGV[5] == '1') then
  redis.call('HSET', KEYS[1], field, string.format('%d %d %d', index, curr, prev))
  -- This window's count is still weighed during the next one. Other policies on the same
  -- key may need longer, so the expiry only ever grows.
  local ttl = 2 * window - elapsed
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end
return {allowed and 1 or 0, prev, curr, elapsed}
"""


@dataclass(frozen=True)
class Decision:
    """The answer to one check: whether it may proceed, and what to tell the client.

    `remaining` is how many unit hits still fit now. `reset_after` is the seconds until the
    whole `limit` is free again if nothing else is counted. `retry_after` is the whole seconds
    (at least 1) until a denied hit of the same cost would be allowed; 0 when allowed.
    `window_seconds` is 0 when unknown (no `RateLimit-Policy` header then).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: int
    window_seconds: int = 0

    def headers(self) -> dict[str, str]:
        """The IETF `RateLimit-*` response headers, plus `Retry-After` when denied."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            # Rounded up: a client that waits this long finds the quota free, never early.
            "RateLimit-Reset": str(max(0, math.ceil(self.reset_after))),
        }
        if self.window_seconds > 0:
            headers["RateLimit-Policy"] = f"{self.limit};w={self.window_seconds}"
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.retry_after))
        return headers


class _Counts(NamedTuple):
    """One policy's state for one key after a check, from either backend."""

    allowed: bool
    prev: int
    curr: int
    elapsed_ms: int


@dataclass
class _Entry:
    """The memory backend's state for one key: one window triple per policy."""

    windows: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    expires_ms: int = 0
    # Per policy: hits counted here while Redis was unreachable, not yet added to its count.
    owed: dict[str, int] = field(default_factory=dict)


class _MemoryBackend:
    """The Lua script's arithmetic on a dict, for when Redis is not there.

    Bounded: keys are kept in least-recently-counted order; expired keys are dropped from the
    old end as new ones come in, and past `max_keys` the oldest go even if still live (their
    limits restart, which under a flood of distinct keys is the right thing to lose).
    """

    def __init__(self, max_keys: int) -> None:
        self._max_keys = max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def check(
        self,
        key: str,
        policy: str,
        *,
        limit: int,
        window_ms: int,
        cost: int,
        count: bool,
        now_ms: int,
    ) -> _Counts:
        index, elapsed = divmod(now_ms, window_ms)
        curr = prev = 0
        entry = self._entries.get(key)
        stored = entry.windows.get(policy) if entry is not None else None
        if stored is not None:
            if stored[0] == index:
                curr, prev = stored[1], stored[2]
            elif stored[0] == index - 1:
                prev = stored[1]
        allowed = prev * (window_ms - elapsed) + (curr + cost) * window_ms <= limit * window_ms
        if allowed and count:
            curr += cost
            if entry is None:
                entry = self._entries[key] = _Entry()
            else:
                self._entries.move_to_end(key)
            entry.windows[policy] = (index, curr, prev)
            entry.expires_ms = max(entry.expires_ms, now_ms + 2 * window_ms - elapsed)
            self._prune(now_ms)
        return _Counts(allowed, prev, curr, elapsed)

    def owed(self, key: str, policy: str) -> int:
        entry = self._entries.get(key)
        return entry.owed.get(policy, 0) if entry is not None else 0

    def owe(self, key: str, policy: str, cost: int) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry.owed[policy] = entry.owed.get(policy, 0) + cost

    def adopt(
        self, key: str, policy: str, counts: _Counts, *, paid: int, window_ms: int, now_ms: int
    ) -> None:
        """Take Redis's counts as this key's own, to carry on from if Redis goes away.

        `paid` of the hits owed were added to Redis's count by the call that answered.
        """
        entry = self._entries.get(key)
        if entry is None:
            if counts.prev == counts.curr == 0:
                return  # nothing to remember
            entry = self._entries[key] = _Entry()
        else:
            self._entries.move_to_end(key)
        entry.windows[policy] = (now_ms // window_ms, counts.curr, counts.prev)
        left = entry.owed.pop(policy, 0) - paid
        if left > 0:
            entry.owed[policy] = left  # counted here while that call was on its way
        entry.expires_ms = max(entry.expires_ms, now_ms + 2 * window_ms - counts.elapsed_ms)
        self._prune(now_ms)

    def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    def _prune(self, now_ms: int) -> None:
        # Amortized O(1): each key is dropped at most once after being added.
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if len(self._entries) <= self._max_keys and oldest.expires_ms > now_ms:
                return
            del self._entries[oldest_key]


class RateLimiter:
    """Counts hits per key against a limit per sliding window; never raises on Redis trouble.

    `key` names the use and the subject, e.g. `"login:" + email`. Each `limit`/`window_seconds`
    pair counts apart, so two policies on one key never mix; the use's prefix is still needed,
    since two uses with the same policy would otherwise share a count, and `reset` forgets a
    key under all its policies. Keys are stored as SHA-256 digests, so user input of any
    length or content never reaches Redis or the logs.

    With `redis_client` None, or while Redis fails, limits are kept in this process's memory
    (at most `max_local_keys` keys), starting from the last count Redis gave for the key; the
    hits counted there are added to Redis's count when it is back. After a failure Redis is
    left alone for `breaker_seconds`, then one call tries it again. `clock` (seconds) drives
    the memory backend and the breaker; Redis counts on its own clock, so processes agree
    however their clocks drift.
    """

    def __init__(
        self,
        redis_client: redis.Redis | None,
        prefix: str = DEFAULT_PREFIX,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_local_keys: int = MAX_LOCAL_KEYS,
        breaker_seconds: float = BREAKER_SECONDS,
    ) -> None:
        self._redis = redis_client
        self._script = redis_client.register_script(_SCRIPT) if redis_client is not None else None
        self._prefix = prefix
        self._clock = clock
        self._memory = _MemoryBackend(max_local_keys)
        # Shared with the caches on the same client: one outage, noticed once.
        self._breaker = (
            breaker_for(redis_client, seconds=breaker_seconds, clock=clock)
            if redis_client is not None
            else Breaker(breaker_seconds, clock)
        )
        self._degraded = False

    async def aclose(self) -> None:
        """Close the Redis client (for a limiter that owns it)."""
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def local_keys(self) -> int:
        """How many keys the in-process fallback currently holds."""
        return len(self._memory)

    def storage_key(self, key: str) -> str:
        """The Redis key holding `key`'s counts: the prefix and a digest, bounded and opaque."""
        # surrogatepass: a str that is not valid Unicode still hashes instead of raising.
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self._prefix}:{digest}"

    async def hit(self, key: str, *, limit: int, window_seconds: int, cost: int = 1) -> Decision:
        """Count `cost` hits against `key` if they fit under `limit` per `window_seconds`.

        A denied hit is not counted, so a client that keeps retrying still gets through once
        the window slides. A `cost` above `limit` is always denied.
        """
        return await self._check(key, limit, window_seconds, cost, count=True)

    async def peek(self, key: str, *, limit: int, window_seconds: int, cost: int = 1) -> Decision:
        """What `hit` would decide now, without counting anything."""
        return await self._check(key, limit, window_seconds, cost, count=False)

    async def reset(self, key: str) -> None:
        """Forget every count of `key` (e.g. after a successful login), under every policy."""
        storage_key = self.storage_key(key)
        self._memory.delete(storage_key)
        if self._redis is None or not self._redis_ready():
            return
        probe = self._start_call()
        try:
            await self._redis.delete(storage_key)
        except MaxConnectionsError:
            pass  # this process's pool is full, Redis itself is fine: not an outage
        except REDIS_ERRORS as exc:
            self._failed(exc)
        else:
            self._succeeded(probe)
        finally:
            self._end_call(probe)

    async def _check(
        self, key: str, limit: int, window_seconds: int, cost: int, *, count: bool
    ) -> Decision:
        if limit < 1 or window_seconds < 1 or cost < 1:
            raise ValueError("limit, window_seconds and cost must be at least 1")
        storage_key = self.storage_key(key)
        policy = f"{limit}/{window_seconds}"
        window_ms = window_seconds * 1000
        counts = None
        now_ms = math.floor(self._clock() * 1000)
        if self._script is not None and self._redis_ready():
            probe = self._start_call()
            owed = self._memory.owed(storage_key, policy)
            try:
                reply = await self._script(
                    keys=[storage_key], args=[policy, limit, window_ms, cost, int(count), owed]
                )
            except MaxConnectionsError:
                pass  # this process's pool is full, Redis itself is fine: count in memory
            except REDIS_ERRORS as exc:
                self._failed(exc)
            else:
                self._succeeded(probe)
                counts = _Counts(bool(reply[0]), int(reply[1]), int(reply[2]), int(reply[3]))
                self._memory.adopt(
                    storage_key, policy, counts, paid=owed, window_ms=window_ms, now_ms=now_ms
                )
            finally:
                self._end_call(probe)
        if counts is None:
            counts = self._memory.check(
                storage_key,
                policy,
                limit=limit,
                window_ms=window_ms,
                cost=cost,
                count=count,
                now_ms=now_ms,
            )
            if count and counts.allowed and self._script is not None:
                self._memory.owe(storage_key, policy, cost)
        return _decision(counts, limit=limit, window_ms=window_ms, cost=cost)

    def _redis_ready(self) -> bool:
        # While down, one call at a time tries Redis once the breaker has cooled; the rest
        # stay on memory, so an outage costs at most one timeout per `breaker_seconds`.
        return self._breaker.allows()

    def _start_call(self) -> bool:
        return self._breaker.begin()

    def _end_call(self, probe: bool) -> None:
        self._breaker.end(probe)

    def _failed(self, exc: BaseException) -> None:
        if not self._degraded:
            # The error says nothing about the key: Redis only ever sees its digest.
            logger.warning(
                "Redis failed; rate limits are kept in process memory until it is back",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
            self._degraded = True
        self._breaker.failed()

    def _succeeded(self, probe: bool) -> None:
        self._breaker.succeeded(probe)
        if self._degraded and self._breaker.closed:
            self._degraded = False
            logger.info("Redis is back; rate limits are shared again")


def _decision(counts: _Counts, *, limit: int, window_ms: int, cost: int) -> Decision:
    """Remaining, reset and retry times from the counts, by the same arithmetic as the check.

    Counts are weighed in 1/window_ms units, so everything stays an exact integer.
    """
    prev, curr, elapsed = counts.prev, counts.curr, counts.elapsed_ms
    left_in_window = window_ms - elapsed
    used = prev * left_in_window + curr * window_ms
    remaining = max(0, (limit * window_ms - used) // window_ms)
    # The current window's hits weigh until the end of the next one; the previous window's
    # until the end of this one.
    if curr > 0:
        reset_ms = left_in_window + window_ms
    elif prev > 0:
        reset_ms = left_in_window
    else:
        reset_ms = 0
    retry_after = 0
    if not counts.allowed:
        retry_after = max(1, math.ceil(_wait_ms(counts, limit, window_ms, cost) / 1000))
    return Decision(
        allowed=counts.allowed,
        limit=limit,
        remaining=remaining,
        reset_after=reset_ms / 1000,
        retry_after=retry_after,
        window_seconds=window_ms // 1000,
    )


def _wait_ms(counts: _Counts, limit: int, window_ms: int, cost: int) -> int:
    """Milliseconds until a hit of `cost` fits, if nothing else is counted meanwhile."""
    prev, curr, elapsed = counts.prev, counts.curr, counts.elapsed_ms
    if cost > limit:
        return 2 * window_ms  # never fits; send the client away for the longest memory span
    if curr + cost <= limit:
        # Only the previous window's weight is in the way: wait for it to fade to the slack.
        # prev * (window - t) <= slack * window, at the first whole millisecond t.
        slack = limit - curr - cost
        return window_ms - (slack * window_ms) // prev - elapsed
    # Wait for the next window, where this window's count becomes the fading one.
    return window_ms - elapsed + window_ms - ((limit - cost) * window_ms) // curr


class RateLimited(ResourceExhausted):
    """429 with the standard `RateLimit-*` and `Retry-After` headers."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(
            f"Too many attempts; retry in {decision.retry_after} seconds.",
            headers=decision.headers(),
        )
