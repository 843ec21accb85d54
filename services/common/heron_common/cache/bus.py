"""The invalidation bus: one process's pub/sub subscription to a cache namespace's channel.

The subscription is the only way this process hears of writes made elsewhere, so losing it
is treated as "anything may have changed": the owner is told at once (`on_down`), and told
again once the subscription is back and confirmed (`on_up`), to flush what it may have missed.
A connection that dies silently (no RST) is caught by our own pings: no pong within three
intervals counts as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as redis

from heron_common.cache.redis import drop_idle_connections
from heron_common.redis.client import REDIS_ERRORS

logger = logging.getLogger("heron.cache")


class InvalidationBus:
    """Keeps a subscription alive with capped exponential backoff and reports its health.

    `on_tick` runs about every `ping_interval` while the subscription is healthy (the owner
    uses it to retry work that needs Redis).
    """

    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        *,
        on_message: Callable[[bytes], None],
        on_up: Callable[[], Awaitable[None]],
        on_down: Callable[[], None],
        on_tick: Callable[[], Awaitable[None]],
        ping_interval: float = 1.0,
        max_backoff: float = 1.0,
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_message = on_message
        self._on_up = on_up
        self._on_down = on_down
        self._on_tick = on_tick
        self._ping_interval = ping_interval
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self.healthy = False
        self.connects = 0
        self.losses = 0
        self.received = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the subscriber task (idempotent); health follows once SUBSCRIBE is confirmed."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=f"cache-bus {self._channel}")

    async def stop(self) -> None:
        """Cancel the subscriber; the owner is told the bus is down."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._lost()

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._subscribe_and_listen()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                if self.healthy:
                    logger.warning(
                        "cache invalidation bus lost; memory tier flushed until it is back",
                        extra={"channel": self._channel, "error": type(exc).__name__},
                    )
            except Exception:
                # A bug must not end the subscriber for good: log it, and recover like a drop.
                logger.exception("cache invalidation bus failed", extra={"channel": self._channel})
            self._lost()
            await drop_idle_connections(self._client)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _lost(self) -> None:
        if self.healthy:
            self.losses += 1
        self.healthy = False
        # Flush even when already unhealthy: entries may have been added meanwhile.
        self._on_down()

    async def _subscribe_and_listen(self) -> None:
        loop = asyncio.get_running_loop()
        # A fresh PubSub each time: redis-py would otherwise reconnect and resubscribe behind
        # our back, and the messages published in the gap would be lost without a flush.
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            last_heard = last_tick = loop.time()
            while not self.healthy:
                message = await pubsub.get_message(timeout=self._ping_interval)
                if message is not None and message["type"] == "subscribe":
                    self.connects += 1
                    await self._on_up()
                    self.healthy = True
                    if self.connects > 1:
                        logger.info("cache invalidation bus back", extra={"channel": self._channel})
                elif loop.time() - last_heard > 3 * self._ping_interval:
                    raise redis.ConnectionError("no subscribe confirmation")
            while True:
                message = await pubsub.get_message(timeout=self._ping_interval)
                now = loop.time()
                if message is not None:
                    last_heard = now
                    if message["type"] == "message":
                        self.received += 1
                        self._on_message(message["data"])
                elif now - last_heard > 3 * self._ping_interval:
                    raise redis.ConnectionError("no pong from a silent subscription")
                elif now - last_heard >= self._ping_interval:
                    await pubsub.ping()
                if now - last_tick >= self._ping_interval:
                    last_tick = now
                    await self._on_tick()
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
