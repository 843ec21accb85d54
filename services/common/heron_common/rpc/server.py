"""gRPC server bootstrap: error/context interceptor, health, reflection, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from heron_common import tracing
from heron_common.context import (
    FRESH_METADATA_KEY,
    REQUEST_ID_METADATA_KEY,
    clean_request_id,
    fresh_var,
    request_id_var,
)
from heron_common.errors import ERROR_TRAILER_KEY, DomainError
from heron_common.rpc.metrics import MethodMetrics, measuring
from heron_common.security.authz import MethodPolicy, principal_var

logger = logging.getLogger("heron.grpc")


class ServerContextInterceptor(grpc.aio.ServerInterceptor):
    """Binds the caller's request id to the context and maps domain errors to gRPC status.

    The one place where errors are translated on the service side: a `DomainError` becomes its
    status code plus the `heron-error-bin` trailer; any other exception is logged with its
    traceback and answered as INTERNAL with no internals in the message. Wrapped handlers are
    built once per method, not per call. With a `policy`, each call is authorized first and its
    principal bound to `principal_var`.
    """

    def __init__(self, policy: MethodPolicy | None = None) -> None:
        self.policy = policy
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            wrapped = _wrap_unary(handler, method, self.policy)
        elif (
            handler.unary_stream is not None or handler.stream_stream is not None
        ) and not method.startswith("/grpc."):
            # (Health's Watch, which streams by context.write, and reflection need no
            # permission: left as they are.)
            wrapped = _wrap_streaming(handler, method, self.policy)
        else:
            return handler
        self._wrapped[method] = wrapped
        return wrapped


def _call_context(
    context: grpc.aio.ServicerContext[Any, Any],
) -> tuple[Any, contextvars.Token[str], contextvars.Token[bool]]:
    """Bind the call's request id and freshness; (its metadata, the tokens to reset)."""
    metadata = context.invocation_metadata() or ()
    request_id = ""
    fresh = False
    for key, value in metadata:
        if key == REQUEST_ID_METADATA_KEY:
            request_id = str(value)
        elif key == FRESH_METADATA_KEY:
            fresh = True
    return metadata, request_id_var.set(clean_request_id(request_id)), fresh_var.set(fresh)


async def _translated(
    exc: BaseException, context: grpc.aio.ServicerContext[Any, Any], method: str
) -> None:
    """A domain error becomes its status and trailer; anything unexpected, INTERNAL."""
    if isinstance(exc, DomainError):
        await context.abort(exc.grpc_status, exc.message, ((ERROR_TRAILER_KEY, exc.to_trailer()),))
    logger.error("unhandled error", exc_info=exc, extra={"rpc": method})
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _code_of(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The status a handler aborted with (UNKNOWN where gRPC does not say)."""
    try:
        code = context.code()
    except (AttributeError, NotImplementedError):
        return "UNKNOWN"
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def _wrap_unary(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, policy: MethodPolicy | None
) -> grpc.RpcMethodHandler[Any, Any]:
    behavior = handler.unary_unary
    measured = MethodMetrics(method) if measuring() else None

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        metadata, token, fresh_token = _call_context(context)
        started = time.perf_counter()
        if measured is not None:
            measured.in_flight.inc()
        code = "OK"
        try:
            if policy is not None:
                principal_var.set(await policy.authorize(method, metadata))
            return await behavior(request, context)  # type: ignore[arg-type, misc]
        except grpc.aio.AbortError:
            code = _code_of(context)
            raise
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception as exc:
            code = exc.grpc_status.name if isinstance(exc, DomainError) else "INTERNAL"
            await _translated(exc, context, method)
        finally:
            if measured is not None:
                measured.done(code, time.perf_counter() - started)
            request_id_var.reset(token)
            fresh_var.reset(fresh_token)

    return grpc.unary_unary_rpc_method_handler(
        unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


@contextlib.asynccontextmanager
async def _serving(
    context: grpc.aio.ServicerContext[Any, Any], method: str, policy: MethodPolicy | None
) -> AsyncIterator[None]:
    """A streaming call's context, authorization and error translation (the unary path has
    the same inlined, being the hot one)."""
    metadata, token, fresh_token = _call_context(context)
    try:
        if policy is not None:
            # Before the first message is read: a refused caller sends nothing we keep.
            principal_var.set(await policy.authorize(method, metadata))
        yield
    except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
        raise
    except Exception as exc:
        await _translated(exc, context, method)
    finally:
        # A stream the client cancelled is closed by asyncio's async-generator finalizer, in
        # a context of its own: there is nothing to restore then.
        with contextlib.suppress(ValueError):
            request_id_var.reset(token)
            fresh_var.reset(fresh_token)


def _wrap_streaming(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, policy: MethodPolicy | None
) -> grpc.RpcMethodHandler[Any, Any]:
    """A method that streams its answers (from one request, or from a stream of them), run in
    `_serving`."""
    if handler.unary_stream is not None:
        behavior: Any = handler.unary_stream
        make: Any = grpc.unary_stream_rpc_method_handler
    else:
        behavior, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler

    measured = MethodMetrics(method) if measuring() else None

    async def streaming(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        started = time.perf_counter()
        if measured is not None:
            measured.in_flight.inc()
        code = "UNKNOWN"
        try:
            async with _serving(context, method, policy):
                async for message in behavior(request, context):
                    yield message
            code = "OK"
        except grpc.aio.AbortError:
            code = _code_of(context)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            code = "CANCELLED"
            raise
        finally:
            if measured is not None:
                measured.done(code, time.perf_counter() - started)

    wrapped: grpc.RpcMethodHandler[Any, Any] = make(
        streaming,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    return wrapped


def create_server(
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (), *, policy: MethodPolicy | None = None
) -> grpc.aio.Server:
    return grpc.aio.server(
        # The tracing interceptor (when traces are on) goes first: its span spans the rest.
        interceptors=[
            *tracing.server_interceptors(),
            ServerContextInterceptor(policy),
            *interceptors,
        ],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ],
    )


@dataclass
class StartedServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    # Reports SERVING once the service is ready (see `start_server`).
    becoming_ready: asyncio.Task[None] | None = None

    async def stop(self, grace_seconds: float, drain_seconds: float = 0.0) -> None:
        """Report NOT_SERVING, keep serving for `drain_seconds` while clients and load
        balancers move away, then let in-flight calls finish within the grace period."""
        if self.becoming_ready is not None:
            self.becoming_ready.cancel()
        await self.health.enter_graceful_shutdown()
        if drain_seconds > 0:
            await asyncio.sleep(drain_seconds)
        await self.server.stop(grace_seconds)


async def start_server(
    server: grpc.aio.Server,
    *,
    host: str,
    port: int,
    service_names: Iterable[str],
    ready: Callable[[], Awaitable[None]] | None = None,
) -> StartedServer:
    """Add health and reflection, bind (port 0 picks a free one) and start serving.

    Health (`grpc.health.v1`) answers SERVING for "" and every listed service only once the
    server is bound and started and `ready()` (e.g. the first fetch of the auth state, without
    which no signed-in call can be verified) has returned; NOT_SERVING until then. Reflection
    lists the same services.
    """
    names = list(service_names)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection([*names, health_name, reflection.SERVICE_NAME], server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:  # grpc raises when the address is taken or invalid
        raise SystemExit(f"cannot listen on {host}:{port}: is another process using it?") from exc
    await server.start()
    logger.info("listening", extra={"address": f"{host}:{bound}", "services": names})
    started = StartedServer(server, bound, health_servicer)
    if ready is None:
        await _report_serving(health_servicer, names)
    else:
        for name in ["", *names]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        started.becoming_ready = asyncio.create_task(
            _serving_once(ready, health_servicer, names), name="health-ready"
        )
    return started


async def _report_serving(health_servicer: health.aio.HealthServicer, names: list[str]) -> None:
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def _serving_once(
    ready: Callable[[], Awaitable[None]],
    health_servicer: health.aio.HealthServicer,
    names: list[str],
) -> None:
    await ready()
    await _report_serving(health_servicer, names)
    logger.info("ready", extra={"services": names})


async def run_server(
    server: grpc.aio.Server,
    *,
    host: str,
    port: int,
    service_names: Iterable[str],
    grace_seconds: float,
    drain_seconds: float = 0.0,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then report NOT_SERVING, drain in-flight calls and stop.
    Health says SERVING once `ready()` returned (see `start_server`)."""
    started = await start_server(
        server, host=host, port=port, service_names=service_names, ready=ready
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    logger.info("shutting down", extra={"grace_seconds": grace_seconds})
    await started.stop(grace_seconds, drain_seconds)
    logger.info("stopped")
