"""Which spans the tracer keeps: requests start traces, background work does not."""

from __future__ import annotations

import pytest
from heron_common import tracing
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags


@pytest.fixture
def spans() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing._requests_only())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_a_request_starts_a_trace_and_its_calls_join_it(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    with tracer.start_as_current_span("GET /api/content/{item_id}", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("GetItem", kind=SpanKind.CLIENT):
            with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT):
                pass
    finished = exporter.get_finished_spans()
    assert [s.name for s in finished] == ["SELECT", "GetItem", "GET /api/content/{item_id}"]
    assert len({s.context.trace_id for s in finished}) == 1


def test_background_calls_without_a_request_are_dropped(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    with tracer.start_as_current_span("AuthState", kind=SpanKind.CLIENT) as poll:
        assert not poll.is_recording()
        # ...and the call it makes carries "not sampled" to the server, which drops it too.
        assert not poll.get_span_context().trace_flags.sampled
    with tracer.start_as_current_span("relay", kind=SpanKind.INTERNAL):
        pass
    assert exporter.get_finished_spans() == ()


def test_a_server_span_follows_its_callers_decision(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    for sampled, kept in ((True, 1), (False, 0)):
        caller = SpanContext(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
            span_id=0x00F067AA0BA902B7,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        )
        parent = trace.set_span_in_context(NonRecordingSpan(caller))
        with tracer.start_as_current_span("GetItem", context=parent, kind=SpanKind.SERVER):
            pass
        assert len(exporter.get_finished_spans()) == kept
        exporter.clear()


def test_without_an_endpoint_tracing_stays_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not tracing.wanted()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")
    assert not tracing.wanted()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert tracing.wanted()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.wanted()
    assert tracing.server_interceptors() == [] and tracing.client_interceptors() == []
