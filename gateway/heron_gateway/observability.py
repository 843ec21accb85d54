"""The gateway's HTTP metrics per route template, and its traces when tracing is on.

Metrics: `heron_http_requests_total` (method, route, status) and
`heron_http_request_duration_seconds` (method, route; a histogram), where the route is the
template a request matched (`/api/content/{item_id}`) and `unmatched` for a path no route
serves, so a client cannot make a series per URL. A request costs one dict lookup and a few
additions here; the Prometheus families are built when `/metrics` is scraped.

Traces (`heron_common.tracing`): the official ASGI instrumentation wraps the whole app, hot
path included, its spans named by the same route template; the query string and credentials
in the path never reach a span, and every answer carries its `X-Trace-Id`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from heron_common import tracing
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from heron_gateway.routing import RouteTable

UNMATCHED = "unmatched"
ROUTE_KEY = "heron_route"
"""Where the route guard records the template it matched, in the request's shared state."""

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteNames:
    """The route template of a (method, canonical path), remembered for the paths seen last
    (a cache hit on the hot path then costs a dict lookup, not a route match)."""

    LIMIT = 4096

    def __init__(self, table: RouteTable) -> None:
        self.table = table
        self._known: dict[tuple[str, str], str] = {}

    def of(self, method: str, path: str) -> str:
        key = (method, path)
        name = self._known.get(key)
        if name is None:
            wanted = "GET" if method == "HEAD" else method
            route = next((r for r in self.table.matching(path) if wanted in r.methods), None)
            name = route.template if route is not None else UNMATCHED
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[key] = name
        return name


class _Series:
    __slots__ = ("buckets", "statuses", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.statuses: dict[int, int] = {}


class HttpMetrics(Collector):
    """The answered requests, by method, route template and status."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "OTHER", route)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        series.buckets[bisect_left(BUCKETS, seconds)] += 1
        series.sum += seconds
        series.statuses[status] = series.statuses.get(status, 0) + 1

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily(
            "heron_http_requests",
            "HTTP requests this gateway answered, by method, route template and status",
            labels=["method", "route", "status"],
        )
        durations = HistogramMetricFamily(
            "heron_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by method and route template",
            labels=["method", "route"],
        )
        for (method, route), series in list(self._series.items()):
            for status, count in list(series.statuses.items()):
                requests.add_metric([method, route, str(status)], count)
            cumulative, running = [], 0
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), series.buckets, strict=True):
                running += count
                cumulative.append((bound, running))
            durations.add_metric([method, route], cumulative, series.sum)
        yield requests
        yield durations


HTTP_METRICS = HttpMetrics()
REGISTRY.register(HTTP_METRICS)


def traced(app: ASGIApp, routes: RouteNames) -> ASGIApp:
    """`app` inside the OpenTelemetry ASGI middleware, when tracing is on; else `app`."""
    if not tracing.enabled():
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    from heron_gateway.middleware import redact_path

    def span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
        method = scope.get("method", "")
        if scope.get("type") != "http":
            return method or "ASGI", {}
        route = routes.of(method, scope.get("path", ""))
        if route == UNMATCHED:
            return method, {}
        return f"{method} {route}", {"http.route": route}

    def without_secrets(span: Any, scope: Scope) -> None:
        # URLs may carry what must not leave the process: the magic link's token, a
        # credential-shaped path segment. Spans keep the redacted path, never the query.
        if not span.is_recording():
            return
        path = redact_path(scope.get("path", ""))
        for key in ("http.target", "url.path"):
            span.set_attribute(key, path)
        span.set_attribute("url.query", "")
        scheme = scope.get("scheme", "http")
        host, port = scope.get("server") or ("", None)
        origin = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
        for key in ("http.url", "url.full"):
            span.set_attribute(key, origin + path)

    return OpenTelemetryMiddleware(
        TraceIdHeader(app),
        default_span_details=span_details,
        server_request_hook=without_secrets,
        exclude_spans=["receive", "send"],
    )


class TraceIdHeader:
    """Adds `X-Trace-Id` (the request's trace, as 32 hex digits) to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = tracing.current_trace_id().encode()

        async def with_trace_id(message: Message) -> None:
            if message["type"] == "http.response.start" and trace_id:
                message["headers"] = [*message.get("headers", ()), (b"x-trace-id", trace_id)]
            await send(message)

        await self.app(scope, receive, with_trace_id)
