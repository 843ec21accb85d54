"""OpenTelemetry traces: on when an OTLP endpoint is configured, absent otherwise.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, a process
builds a tracer provider that exports its spans in batches over OTLP (`http/protobuf`, the
specification's default, or `grpc` with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), and turns on the
official instrumentations: its gRPC server and channels (the W3C `traceparent` travels in the
calls' metadata), SQLAlchemy, Redis and botocore; the gateway adds the ASGI one. Each log line
then carries `trace_id` and `span_id`. The SDK's own variables apply as documented:
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`,
`OTEL_EXPORTER_OTLP_HEADERS`, and `OTEL_SDK_DISABLED=true` turns it all off.

Without an endpoint nothing here is imported or patched: a request pays nothing for tracing.

Only requests start traces. A span without a parent is kept only if it is a server span (an
HTTP request at the gateway, a gRPC call arriving at a service from outside a trace): the
background loops (the auth state poll, the outbox relay, schedules) would otherwise send a
trace every second from every process.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("heron.tracing")

_HEALTH_SERVICE = "grpc.health.v1.Health"

READS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_SDK_DISABLED",
)
"""The OpenTelemetry variables this module reads itself (the SDK and its exporters read the
rest of the standard ones); a deployment may set them beside the `HERON_` settings."""


class _State:
    provider: Any = None


_state = _State()


def enabled() -> bool:
    """Whether this process records and exports spans."""
    return _state.provider is not None


def wanted() -> bool:
    """Whether the environment asks for traces (an OTLP endpoint, and the SDK not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def configure_tracing(service: str, *, exporter: Any = None) -> bool:
    """Turn tracing on for this process if the environment asks for it (or `exporter` is
    given, for tests); True when it is on. Call once, before servers and clients are built."""
    if enabled():
        return True
    if exporter is None and not wanted():
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create(
        {
            SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or f"heron-{service}",
            "service.namespace": "heron",
            SERVICE_INSTANCE_ID: f"{socket.gethostname()}-{os.getpid()}",
        }
    )
    provider = TracerProvider(resource=resource, sampler=_requests_only())
    if exporter is None:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _state.provider = provider
    _instrument_libraries()
    _stamp_log_records()
    logger.info(
        "tracing on",
        extra={"exporter": type(exporter).__name__ if exporter else _protocol()},
    )
    return True


def shutdown() -> None:
    """Export what is still buffered (at the end of a process)."""
    if _state.provider is not None:
        _state.provider.shutdown()


def _protocol() -> str:
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _otlp_exporter() -> Any:
    """The OTLP exporter for the configured protocol; it reads its endpoint, headers,
    compression and timeout from the standard variables itself."""
    if _protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def _requests_only() -> Any:
    """The configured sampler (`OTEL_TRACES_SAMPLER`, default always on) for traces that a
    request starts; a span without a parent that is not a server span is dropped."""
    from opentelemetry.sdk.trace import sampling
    from opentelemetry.trace import SpanKind, get_current_span

    configured = sampling._get_from_env_or_default()
    if isinstance(configured, sampling.ParentBased):
        root = configured._root
    else:
        root = configured

    class RequestRoots(sampling.Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Sequence[Any] | None = None,
            trace_state: Any = None,
        ) -> sampling.SamplingResult:
            if kind is not SpanKind.SERVER:
                return sampling.SamplingResult(
                    sampling.Decision.DROP,
                    None,
                    get_current_span(parent_context).get_span_context().trace_state,
                )
            return root.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"RequestRoots{{{root.get_description()}}}"

    return sampling.ParentBased(root=RequestRoots())


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Its declared range stops before SQLAlchemy 2.1, whose engine events it hooks are the
    # same: the dependency check is skipped (the tracing test proves the spans).
    SQLAlchemyInstrumentor().instrument(skip_dep_check=True)
    RedisInstrumentor().instrument()
    try:
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    except ImportError:  # a process without boto3 (only the media service talks to S3)
        return
    BotocoreInstrumentor().instrument()  # type: ignore[no-untyped-call]


def _stamp_log_records() -> None:
    """Every log record made inside a span carries its trace and span ids."""
    from opentelemetry.trace import get_current_span

    base = logging.getLogRecordFactory()

    def with_trace(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        context = get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return record

    logging.setLogRecordFactory(with_trace)


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits, or "" outside a recorded trace."""
    if _state.provider is None:
        return ""
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def server_interceptors() -> list[Any]:
    """The gRPC server's tracing interceptor (health checks left out), or none."""
    if _state.provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    skip_health = filters.negate(filters.service_name(_HEALTH_SERVICE))
    return [aio_server_interceptor(filter_=skip_health)]  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    """A channel's tracing interceptors (they put `traceparent` in each call's metadata)."""
    if _state.provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors, filters

    skip_health = filters.negate(filters.service_name(_HEALTH_SERVICE))
    return list(aio_client_interceptors(filter_=skip_health))  # type: ignore[no-untyped-call]
