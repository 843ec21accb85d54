"""Every service's own /metrics (HERON_<SERVICE>_METRICS_PORT): gRPC calls per method and
status code, their latency and calls in flight, and the database pool, in Prometheus' format,
as a scraper reads them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from heron_common.registry import SERVICES

from tests.conftest import free_port
from tests.e2e.conftest import Stack, start_stack

PORTS = {service.name: free_port() for service in SERVICES}


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {f"HERON_{name.upper()}_METRICS_PORT": str(port) for name, port in PORTS.items()}
    running = start_stack(tmp_path_factory.mktemp("metrics"), seed=False, extra_env=env)
    yield running
    running.stop()


def _scrape(service: str) -> str:
    reply = httpx.get(f"http://127.0.0.1:{PORTS[service]}/metrics", timeout=5)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return reply.text


def _series(name: str, code: str | None, method: str, service: str) -> str:
    """A series as Prometheus' text format writes it (labels in name order)."""
    labels = [f'grpc_code="{code}"'] if code else []
    labels += [f'grpc_method="{method}"', f'grpc_service="{service}"']
    return f"{name}{{{','.join(labels)}}}"


def _value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.M)
    assert found, series
    return float(found.group(1))


def test_every_service_counts_its_calls_by_method_and_code(metered: Stack) -> None:
    client = metered.client
    made = client.post("/api/collections", json={"name": "metered", "schema": {}})
    assert made.status_code == 201, made.text
    for n in range(3):
        assert client.post(
            "/api/content", json={"collection": "metered", "title": f"m{n}"}
        ).is_success
    missing = client.get("/api/content/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    content = _scrape("content")
    service = "cms.content.v1.ContentService"
    created = _series("heron_grpc_server_handled_total", "OK", "CreateItem", service)
    assert _value(content, created) == 3
    not_found = _series("heron_grpc_server_handled_total", "NOT_FOUND", "GetItem", service)
    assert _value(content, not_found) >= 1
    count = _series("heron_grpc_server_handling_seconds_count", None, "CreateItem", service)
    assert _value(content, count) == 3
    in_flight = _series("heron_grpc_server_in_flight", None, "CreateItem", service)
    assert _value(content, in_flight) == 0
    for service in SERVICES:
        text = _scrape(service.name)
        assert "heron_grpc_server_handled_total" in text, service.name
        assert f'heron_db_pool_checked_out{{service="{service.name}"}}' in text, service.name
    # The gateway's sign-in went to the auth service.
    auth = _scrape("auth")
    login = _series("heron_grpc_server_handled_total", "OK", "Login", "cms.auth.v1.AuthService")
    assert _value(auth, login) >= 1


def test_the_gateway_counts_requests_by_route_template_never_by_raw_path(metered: Stack) -> None:
    client = metered.client
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for item_id in ids:
        assert client.get(f"/api/content/{item_id}").status_code == 404
    assert metered.anon.get(f"/no/such/page/{ids[0]}").status_code == 404
    text = client.get("/metrics").text
    route = "/api/content/{item_id}"
    series = f'heron_http_requests_total{{method="GET",route="{route}",status="404"}}'
    assert _value(text, series) >= 3
    histogram = f'heron_http_request_duration_seconds_count{{method="GET",route="{route}"}}'
    assert _value(text, histogram) >= 3
    assert 'route="unmatched",status="404"' in text
    assert not any(item_id in text for item_id in ids)  # no series per URL


def test_each_outbox_reports_its_lag(metered: Stack) -> None:
    for service in ("auth", "content", "media"):
        text = _scrape(service)
        assert _value(text, f'heron_outbox_lag_seconds{{source="{service}"}}') == 0
        assert _value(text, f'heron_outbox_delivered_total{{source="{service}"}}') >= 0
