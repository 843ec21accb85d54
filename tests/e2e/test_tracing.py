"""Traces across processes: with OTEL_EXPORTER_OTLP_ENDPOINT set, one request's trace holds
spans from the gateway, the gRPC services and their stores, exported over OTLP/HTTP to a
receiver this test runs; without it, no trace at all."""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.conftest import free_port
from tests.e2e.conftest import Stack, s3_env, start_stack

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
BUCKET = "heron-traced"


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


@dataclass
class Receiver:
    """An OTLP/HTTP traces endpoint: keeps every span it is sent."""

    url: str
    spans: list[Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        received = []
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Span(
                            service=service,
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self.lock:
            self.spans += received

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(self, trace_id: str, services: set[str], timeout: float = 30) -> list[Span]:
        """The trace once each of `services` has sent its server span (a process exports a
        span when it ends: the server span ends after everything under it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.trace(trace_id)
            if services <= {s.service for s in spans if s.kind == SERVER}:
                return spans
            time.sleep(0.1)
        seen = {(s.service, s.name) for s in self.trace(trace_id)}
        raise AssertionError(f"trace {trace_id} lacks spans of {services}: {seen}")


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    port = free_port()
    received = Receiver(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_response(404)
                self.end_headers()
                return
            received.add(body)
            answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def traced(
    receiver: Receiver, tmp_path_factory: pytest.TempPathFactory, redis_url: str, moto_url: str
) -> Iterator[Stack]:
    boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=BUCKET)
    running = start_stack(
        tmp_path_factory.mktemp("traced"),
        seed=False,
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "HERON_REDIS_URL": redis_url,
            **s3_env(moto_url, BUCKET),
        },
    )
    yield running
    running.stop()


def test_one_request_is_one_trace_through_gateway_service_and_stores(
    traced: Stack, receiver: Receiver
) -> None:
    client = traced.client
    assert client.post("/api/collections", json={"name": "traced", "schema": {}}).is_success
    made = client.post("/api/content", json={"collection": "traced", "title": "Followed"})
    assert made.status_code == 201, made.text
    item_id = made.json()["data"]["id"]

    reply = client.get(f"/api/content/{item_id}")  # a miss: every tier is asked
    assert reply.status_code == 200
    trace_id = reply.headers["x-trace-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    spans = receiver.wait_for(trace_id, {"heron-gateway", "heron-content"})
    by_id = {s.span_id: s for s in spans}

    [http] = [s for s in spans if s.service == "heron-gateway" and s.kind == SERVER]
    assert http.name == "GET /api/content/{item_id}"  # the template, never the raw path
    assert http.attributes["http.route"] == "/api/content/{item_id}"
    assert http.parent_id == ""
    [served] = [
        s
        for s in spans
        if s.service == "heron-content" and s.kind == SERVER and "GetItem" in s.name
    ]
    # The content service's span continues the gateway's call (traceparent in the metadata).
    caller = by_id[served.parent_id]
    assert (caller.service, caller.kind) == ("heron-gateway", CLIENT)
    assert "GetItem" in caller.name
    assert _descends_from(caller, http, by_id)
    queries = [s for s in spans if s.service == "heron-content" and s.attributes.get("db.system")]
    assert queries, [(s.service, s.name) for s in spans]
    assert all(_descends_from(q, served, by_id) for q in queries)
    # The cache tiers ask Redis (L2) within the request.
    assert any(s.attributes.get("db.system") == "redis" for s in spans), [
        (s.service, s.name) for s in spans
    ]

    # The request's access log line carries its trace.
    [line] = [
        entry
        for entry in _entries(traced.gateway.log())
        if entry.get("msg") == "request" and entry.get("trace_id") == trace_id
    ]
    assert line["route"] == "/api/content/{item_id}"
    assert line["span_id"] == http.span_id


def test_a_write_trace_reaches_the_auth_service_and_the_database(
    traced: Stack, receiver: Receiver
) -> None:
    created = traced.client.post("/api/collections", json={"name": "traced_write", "schema": {}})
    assert created.status_code == 201, created.text
    trace_id = created.headers["x-trace-id"]
    spans = receiver.wait_for(trace_id, {"heron-gateway", "heron-content"})
    inserts = [s for s in spans if "INSERT" in str(s.attributes.get("db.statement", ""))]
    assert inserts, [(s.service, s.name) for s in spans]


def test_an_upload_trace_shows_the_s3_requests(traced: Stack, receiver: Receiver) -> None:
    reply = traced.client.post(
        "/api/media/upload", files={"file": ("notes.txt", b"traced bytes\n", "text/plain")}
    )
    assert reply.status_code == 201, reply.text
    trace_id = reply.headers["x-trace-id"]
    spans = receiver.wait_for(trace_id, {"heron-gateway", "heron-media"})
    by_id = {s.span_id: s for s in spans}
    [upload] = [s for s in spans if s.service == "heron-media" and s.kind == SERVER]
    s3 = [
        s for s in spans if s.service == "heron-media" and s.attributes.get("rpc.service") == "S3"
    ]
    assert s3, [(s.service, s.name) for s in spans]
    assert all(_descends_from(call, upload, by_id) for call in s3)


def test_a_callers_traceparent_is_continued(traced: Stack, receiver: Receiver) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    reply = traced.anon.get(
        "/api/collections", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    )
    assert reply.status_code == 200
    assert reply.headers["x-trace-id"] == trace_id
    spans = receiver.wait_for(trace_id, {"heron-gateway", "heron-content"})
    [http] = [s for s in spans if s.service == "heron-gateway" and s.kind == SERVER]
    assert http.parent_id == "00f067aa0ba902b7"


def test_no_secret_of_a_url_reaches_a_span(traced: Stack, receiver: Receiver) -> None:
    secret = "magic-" + "7f3a9c2e1b8d4f60" * 2
    reply = traced.anon.get(f"/auth/magic-link/verify?token={secret}", follow_redirects=False)
    trace_id = reply.headers["x-trace-id"]
    spans = receiver.wait_for(trace_id, {"heron-gateway"})
    assert spans
    time.sleep(0.5)  # anything the services exported for it too
    assert secret not in repr(receiver.trace(trace_id))


def test_background_work_sends_no_traces(traced: Stack, receiver: Receiver) -> None:
    # The services poll each other every second (auth state, plugins, schedules, outboxes).
    time.sleep(3)
    with receiver.lock:
        spans = list(receiver.spans)
    requested = {s.trace_id for s in spans if s.service == "heron-gateway" and s.kind == SERVER}
    stray = {(s.service, s.name) for s in spans if s.trace_id not in requested}
    assert not stray


def test_without_an_endpoint_nothing_is_traced(stack: Stack) -> None:
    reply = stack.anon.get("/api/collections")
    assert reply.status_code == 200
    assert "x-trace-id" not in reply.headers
    assert not any("trace_id" in entry for entry in _entries(stack.gateway.log()))


def _descends_from(span: Span, ancestor: Span, by_id: dict[str, Span]) -> bool:
    while span.parent_id:
        if span.parent_id == ancestor.span_id:
            return True
        parent = by_id.get(span.parent_id)
        if parent is None:
            return False
        span = parent
    return False


def _entries(log: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
