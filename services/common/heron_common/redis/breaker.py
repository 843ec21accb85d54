"""One circuit breaker per Redis client, shared by everything in the process that uses it (the
cache tiers, the rate limiter): once a call fails, Redis is left alone for `seconds`; then one
call at a time probes it, and only a probe that succeeds closes the breaker again. A dead Redis
costs the process at most one timeout per `seconds`, whoever notices first.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

import redis.asyncio as redis

BREAKER_SECONDS = 1.0


class Breaker:
    def __init__(
        self, seconds: float = BREAKER_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        self.seconds = seconds
        self._clock = clock
        self._down_until: float | None = None  # set while Redis is considered down
        self._probing = False

    @property
    def closed(self) -> bool:
        """Whether Redis is believed up."""
        return self._down_until is None

    def allows(self) -> bool:
        """Whether a call may go to Redis now (closed, or cooled down with no probe running)."""
        if self._down_until is None:
            return True
        return not self._probing and self._clock() >= self._down_until

    def begin(self) -> bool:
        """Start a call; True when it is the probe of an open breaker."""
        probe = self._down_until is not None
        if probe:
            self._probing = True
        return probe

    def end(self, probe: bool) -> None:
        if probe:
            self._probing = False

    def failed(self) -> None:
        self._down_until = self._clock() + self.seconds

    def succeeded(self, probe: bool) -> None:
        # Only the probe ends an outage: a call begun before the failure that happens to
        # succeed late must not make the breaker flap.
        if probe:
            self._down_until = None

    def reset(self) -> None:
        """Redis answered elsewhere (e.g. a subscription came back): stop skipping it."""
        self._down_until = None
        self._probing = False


_BREAKERS: weakref.WeakKeyDictionary[redis.Redis, Breaker] = weakref.WeakKeyDictionary()


def breaker_for(
    client: redis.Redis,
    *,
    seconds: float = BREAKER_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Breaker:
    """The breaker of `client`, made on first use (with these settings)."""
    found = _BREAKERS.get(client)
    if found is None:
        found = _BREAKERS[client] = Breaker(seconds, clock)
    return found
