"""The invalidation bus: one process's pub/sub subscription to a cache namespace's channel.

The subscription is the only way this process hears of writes made elsewhere, so losing it
is treated as "anything may have changed": the owner is told at once (`on_down`), and told
again once the subscription is back and confirmed (`on_up`), to flush what it may have missed.
A connection that dies silently (no RST) is caught by our own pings: no pong within three
intervals counts as lost.

Read-after-write across processes. A writer's invalidation is published, and fenced (see
`RedisTier.fence`: Redis may answer the publisher before it writes to the subscribers), before
its write is acknowledged, so by the time a reader's request reaches this process the message
is already in this process's socket. It must be applied before that request looks in
memory. A message is therefore applied by the connection's protocol the moment its bytes are
read, in the same event-loop turn, ahead of every task that turn schedules (a request's
handler is such a task, in uvicorn and in grpc.aio alike). Handing the message to a reader task
instead, as redis-py's PubSub does, would let a request that arrived in the same turn run first
and read the old entry.
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

_PING = b"*1\r\n$4\r\nPING\r\n"


def command(*parts: bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    encoded = [b"*%d\r\n" % len(parts)]
    for part in parts:
        encoded.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(encoded)


class ProtocolError(Exception):
    """The server sent something a subscription never receives (or an error reply)."""


class PushParser:
    """Splits a subscription's byte stream into its frames: the pushes (arrays of bulk strings
    and integers, RESP2 `*` or RESP3 `>`) and the simple replies (`+PONG` in RESP3).

    `feed` returns every complete frame, keeping a partial one for the next call.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[list[bytes | int] | bytes]:
        self._buffer += data
        frames: list[list[bytes | int] | bytes] = []
        position = 0
        while True:
            parsed = self._frame(position)
            if parsed is None:
                break
            frame, position = parsed
            frames.append(frame)
        del self._buffer[:position]
        return frames

    def _header(self, position: int) -> tuple[bytes, bytes, int] | None:
        """The type byte and the rest of the line at `position`, and where the next starts."""
        end = self._buffer.find(b"\r\n", position)
        if end < 0:
            return None
        return (
            bytes(self._buffer[position : position + 1]),
            bytes(self._buffer[position + 1 : end]),
            end + 2,
        )

    def _frame(self, position: int) -> tuple[list[bytes | int] | bytes, int] | None:
        line = self._header(position)
        if line is None:
            return None
        kind, rest, position = line
        if kind == b"+":
            return rest, position
        if kind == b"-":
            raise ProtocolError(rest.decode("utf-8", "replace"))
        if kind not in (b"*", b">"):
            raise ProtocolError(f"unexpected frame {(kind + rest)[:20]!r}")
        items: list[bytes | int] = []
        for _ in range(int(rest)):
            element = self._element(position)
            if element is None:
                return None
            value, position = element
            items.append(value)
        return items, position

    def _element(self, position: int) -> tuple[bytes | int, int] | None:
        line = self._header(position)
        if line is None:
            return None
        kind, rest, position = line
        if kind == b":":
            return int(rest), position
        if kind == b"+":
            return rest, position
        if kind != b"$":
            raise ProtocolError(f"unexpected element {(kind + rest)[:20]!r}")
        size = int(rest)
        if size < 0:  # a null bulk string: no payload follows
            return b"", position
        end = position + size
        if len(self._buffer) < end + 2:
            return None
        return bytes(self._buffer[position:end]), end + 2


class _Subscription(asyncio.Protocol):
    """The subscribed connection: applies each message as soon as its bytes are read."""

    def __init__(self, on_message: Callable[[bytes], None], clock: Callable[[], float]) -> None:
        self._on_message = on_message
        self._clock = clock
        self._parser = PushParser()
        self.confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_heard = clock()
        self.received = 0

    def data_received(self, data: bytes) -> None:
        self.last_heard = self._clock()
        try:
            frames = self._parser.feed(data)
        except (ProtocolError, ValueError) as exc:
            self._fail(ProtocolError(str(exc)))
            return
        for frame in frames:
            if not isinstance(frame, list) or not frame:
                continue  # a RESP3 +PONG: only proof of life
            kind = frame[0]
            if kind == b"message" and len(frame) == 3 and isinstance(frame[2], bytes):
                self.received += 1
                try:
                    self._on_message(frame[2])
                except Exception as exc:  # a bug: recover as from a drop (the memory is flushed)
                    logger.exception("cache invalidation could not be applied")
                    self._fail(exc)
                    return
            elif kind == b"subscribe" and not self.confirmed.done():
                self.confirmed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis.ConnectionError("subscription closed"))

    def _fail(self, exc: Exception) -> None:
        if not self.lost.done():
            self.lost.set_exception(exc)
            self.lost.exception()  # retrieved: the listener reports it


_LOSSES: tuple[type[BaseException], ...] = (ProtocolError, OSError, *REDIS_ERRORS)


class InvalidationBus:
    """Keeps a subscription alive with capped exponential backoff and reports its health.

    `on_tick` runs about every `ping_interval` while the subscription is healthy (the owner
    uses it to retry work that needs Redis). `on_message` runs inside the connection's read
    callback: it must be quick and must not raise.
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
        self._subscription: _Subscription | None = None
        self.healthy = False
        self.connects = 0
        self.losses = 0
        self._received_before = 0

    @property
    def received(self) -> int:
        """Messages heard on this channel since the bus was created."""
        current = self._subscription
        return self._received_before + (0 if current is None else current.received)

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
            except _LOSSES as exc:
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
        # A connection of its own, set up (TLS, AUTH) by redis-py as the pool's would be, then
        # read by our protocol. RESP2: pushes are plain arrays. Named after its channel, so
        # `CLIENT LIST` tells which installation and namespace each subscriber serves.
        pool = self._client.connection_pool
        connection = pool.connection_class(
            **{**pool.connection_kwargs, "protocol": 2, "client_name": self._channel}
        )
        try:
            await connection.connect()  # type: ignore[no-untyped-call]  # untyped in redis-py
            writer = connection._writer  # redis-py keeps the stream private; its transport is ours
            if writer is None:
                raise redis.ConnectionError("no connection")
            transport = writer.transport
            subscription = _Subscription(self._on_message, loop.time)
            transport.set_protocol(subscription)
            self._subscription = subscription
            transport.write(command(b"SUBSCRIBE", self._channel.encode()))
            try:
                await asyncio.wait_for(
                    asyncio.shield(subscription.confirmed), 3 * self._ping_interval
                )
            except TimeoutError:
                raise redis.ConnectionError("no subscribe confirmation") from None
            self.connects += 1
            await self._on_up()
            self.healthy = True
            if self.connects > 1:
                logger.info("cache invalidation bus back", extra={"channel": self._channel})
            await self._listen(loop, transport, subscription)
        finally:
            current, self._subscription = self._subscription, None
            if current is not None:
                self._received_before += current.received
            with contextlib.suppress(*REDIS_ERRORS, OSError):
                await connection.disconnect(nowait=True)

    async def _listen(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.WriteTransport,  # asyncio's or uvloop's (not a subclass there)
        subscription: _Subscription,
    ) -> None:
        last_tick = loop.time()
        while True:
            await asyncio.wait((subscription.lost,), timeout=self._ping_interval)
            if subscription.lost.done():
                subscription.lost.result()  # raises why
            now = loop.time()
            silent = now - subscription.last_heard
            if silent > 3 * self._ping_interval:
                raise redis.ConnectionError("no pong from a silent subscription")
            if silent >= self._ping_interval:
                transport.write(_PING)
            if now - last_tick >= self._ping_interval:
                last_tick = now
                await self._on_tick()
