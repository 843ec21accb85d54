"""gRPC client side: one channel per upstream, calls with a deadline and the request id."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import Any, Protocol, TypeVar

import grpc

from heron_common import tracing
from heron_common.cache.tags import tags_from
from heron_common.context import (
    FRESH_METADATA_KEY,
    REQUEST_ID_METADATA_KEY,
    fresh_var,
    request_id_var,
)
from heron_common.errors import from_rpc_error

Response = TypeVar("Response", covariant=True)


class UnaryMethod(Protocol[Response]):
    def __call__(
        self, request: Any, *, timeout: float | None = ..., metadata: Any = ...
    ) -> Awaitable[Response]: ...


def retry_service_config(service: str, idempotent_methods: Iterable[str]) -> str:
    """A gRPC service config retrying idempotent reads on UNAVAILABLE with backoff.

    Writes are never retried by the channel: they carry an idempotency key and are retried,
    if at all, by a caller that knows the key.
    """
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": service, "method": m} for m in idempotent_methods],
                    "retryPolicy": {
                        "maxAttempts": 3,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "0.3s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


ROUND_ROBIN: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
# Each connection watches its server's overall health (grpc.health.v1): a server that drains
# (NOT_SERVING before it stops) or is still starting gets no new calls while the others take
# them.
HEALTH_CHECKED: dict[str, Any] = {"healthCheckConfig": {"serviceName": ""}}


def create_channel(
    target: str, *, service_config: str | None = None, health_checked: bool = True
) -> grpc.aio.Channel:
    """An insecure channel to an internal service, tuned to reconnect quickly after a restart.

    gRPC's default reconnect backoff grows to two minutes; services restart in seconds, so the
    backoff is capped at one second to keep recovery within the documented bound.

    Calls are spread round-robin over every address the target resolves to: with
    `dns:///content:50052` and a headless Service (one address per ready pod), over every
    replica; with `ipv4:127.0.0.1:50052,127.0.0.1:50062`, over both. (gRPC's default,
    pick_first, would keep one HTTP/2 connection to one of them.) Only servers whose health
    service says SERVING get calls, so a draining replica is left alone before it stops;
    `health_checked=False` is for the channel that asks the servers how they are (a readiness
    check must reach a server that is not serving).
    """
    options: list[tuple[str, Any]] = [
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        # A page of up to 50 items of up to 1 MiB each must fit.
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.enable_retries", 1),
    ]
    config = {**(json.loads(service_config) if service_config else {}), **ROUND_ROBIN}
    if health_checked:
        config.update(HEALTH_CHECKED)
    options.append(("grpc.service_config", json.dumps(config)))
    return grpc.aio.insecure_channel(
        target, options=options, interceptors=tracing.client_interceptors() or None
    )


class _Call(Protocol[Response]):
    def __await__(self) -> Generator[Any, None, Response]: ...

    async def trailing_metadata(self) -> Any: ...


class UnaryCallMethod(Protocol[Response]):
    def __call__(
        self, request: Any, *, timeout: float | None = ..., metadata: Any = ...
    ) -> _Call[Response]: ...


_FRESH = ((FRESH_METADATA_KEY, "1"),)


def call_metadata(metadata: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The call's metadata: the request id, whether it asks for a fresh answer, and more."""
    fresh = _FRESH if fresh_var.get() else ()
    return ((REQUEST_ID_METADATA_KEY, request_id_var.get()), *fresh, *metadata)


async def call_with_tags(
    method: UnaryCallMethod[Response],
    request: Any,
    *,
    timeout: float,  # noqa: ASYNC109 - becomes the gRPC deadline, not an asyncio timeout
    metadata: Iterable[tuple[str, str]] = (),
) -> tuple[Response, list[str] | None]:
    """`call`, and the cache tags the service says its answer depends on (its trailers)."""
    md = call_metadata(metadata)
    try:
        rpc = method(request, timeout=timeout, metadata=md)
        response = await rpc
        return response, tags_from(await rpc.trailing_metadata())
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None


async def call(
    method: UnaryMethod[Response] | Callable[..., Awaitable[Response]],
    request: Any,
    *,
    timeout: float,  # noqa: ASYNC109 - becomes the gRPC deadline, not an asyncio timeout
    metadata: Iterable[tuple[str, str]] = (),
) -> Response:
    """Call a unary RPC with a deadline and the current request id; raise domain errors.

    The deadline is mandatory: no call may wait on a hung service forever.
    """
    md = call_metadata(metadata)
    try:
        return await method(request, timeout=timeout, metadata=md)
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
