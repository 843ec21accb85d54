"""The Redis circuit breaker: one per client, shared by its users; probes one call at a time."""

from __future__ import annotations

import redis.asyncio as redis
from heron_common.redis.breaker import Breaker, breaker_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_open_breaker_lets_one_probe_through_after_cooling_down() -> None:
    clock = Clock()
    breaker = Breaker(1.0, clock)
    assert breaker.allows() and not breaker.begin()  # closed: ordinary calls
    breaker.failed()
    assert not breaker.closed and not breaker.allows()
    clock.now += 1.0
    assert breaker.allows()
    probe = breaker.begin()
    assert probe and not breaker.allows()  # one probe at a time
    breaker.succeeded(False)  # a call begun before the failure does not close it
    assert not breaker.closed
    breaker.succeeded(probe)
    breaker.end(probe)
    assert breaker.closed and breaker.allows()


def test_a_failed_probe_keeps_it_open_for_another_period() -> None:
    clock = Clock()
    breaker = Breaker(1.0, clock)
    breaker.failed()
    clock.now += 1.0
    probe = breaker.begin()
    breaker.failed()
    breaker.end(probe)
    assert not breaker.allows()
    clock.now += 1.0
    assert breaker.allows()


def test_everything_on_one_client_shares_its_breaker() -> None:
    client, other = redis.Redis(), redis.Redis()
    assert breaker_for(client) is breaker_for(client)
    assert breaker_for(client) is not breaker_for(other)
