"""Cache administration (`cache.manage`): statistics, clearing a namespace, invalidating."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends
from heron_common.cache import TieredCache
from heron_common.errors import DomainError, ErrorDetail, InvalidArgument
from heron_common.security.permissions import Principal
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import PlainTextResponse, Response

from heron_gateway.render import json_response
from heron_gateway.schemas import ERROR_RESPONSES, JSON_ERROR_RESPONSES, Success
from heron_gateway.security import Access
from heron_gateway.upstreams import Upstreams, UpstreamsDep

router = APIRouter(tags=["cache"], responses=ERROR_RESPONSES)

CanManage = Annotated[Principal, Depends(Access("cache.manage"))]
CanReadSettings = Annotated[Principal, Depends(Access("settings.read"))]
Namespace = Literal["gateway", "content"]
NAMESPACES: tuple[str, ...] = get_args(Namespace)


class NamespaceConvertor(Convertor[str]):
    regex = "|".join(NAMESPACES)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("cache_namespace", NamespaceConvertor())


class Invalidation(BaseModel):
    """At least one of `tags`, `keys` or `pattern`, non-empty."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["tags"], "properties": {"tags": {"type": "array", "minItems": 1}}},
                {"required": ["keys"], "properties": {"keys": {"type": "array", "minItems": 1}}},
                {
                    "required": ["pattern"],
                    "properties": {"pattern": {"type": "string", "minLength": 1}},
                },
            ]
        },
    )

    namespace: Namespace = "gateway"
    tags: list[str] = Field(default_factory=list, max_length=100)
    keys: list[str] = Field(default_factory=list, max_length=100)
    pattern: str | None = Field(
        default=None, max_length=200, description="A glob over keys, e.g. `anon:*|/api/content*`."
    )


def namespace_cache(upstreams: Upstreams, namespace: str) -> TieredCache[Any]:
    """A namespace's cache: `gateway` is this gateway's page cache; `content` a handle on the
    content service's (its Redis entries, and its processes over the invalidation bus)."""
    return upstreams.pages if namespace == "gateway" else upstreams.content_rows


@router.get("/api/cache/stats", summary="Cache statistics")
async def stats(upstreams: UpstreamsDep, _: CanManage) -> Response:
    """Hits, misses, evictions and sizes per tier of this gateway's page cache, and how many
    entries each namespace holds in Redis."""
    data: dict[str, Any] = {"gateway": upstreams.pages.stats()}
    data["redis_entries"] = {
        "gateway": await upstreams.pages.redis_entries(),
        "content": await upstreams.content_rows.redis_entries(),
    }
    return json_response({"data": data})


# `{namespace}` matches only a namespace, so that `DELETE /api/cache/stats` is a 405 (GET only)
# rather than a request to clear a namespace called "stats".
@router.delete(
    "/api/cache/{namespace:cache_namespace}", response_model=Success, summary="Clear a namespace"
)
async def clear(namespace: Namespace, upstreams: UpstreamsDep, _: CanManage) -> Response:
    """Every tier, in every process (over Redis when configured)."""
    await namespace_cache(upstreams, namespace).clear()
    return json_response({"success": True})


@router.post("/api/cache/invalidate", response_model=Success, summary="Invalidate entries")
async def invalidate(body: Invalidation, upstreams: UpstreamsDep, _: CanManage) -> Response:
    """By tag (e.g. `items:blog_posts`, `item:<id>`), by key, or by a glob over keys."""
    if not (body.tags or body.keys or body.pattern):
        raise InvalidArgument(
            "Give tags, keys or a pattern.", [ErrorDetail("tags", "at least one of the three")]
        )
    cache = namespace_cache(upstreams, body.namespace)
    if body.tags or body.keys:
        await cache.invalidate(tags=body.tags, keys=body.keys)
    if body.pattern:
        await cache.invalidate_pattern(body.pattern)
    return json_response({"success": True})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    tags=["health"],
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **JSON_ERROR_RESPONSES,
    },
)
async def metrics(upstreams: UpstreamsDep, _: CanReadSettings) -> Response:
    """This gateway's metrics (cache hits, misses, evictions, sizes per tier and namespace),
    and the plugins' hook and route calls, failures and timeouts (`heron_plugin_hook_*_total`,
    per plugin and hook, from the plugins service), in Prometheus' text format. Scrape with an
    API token holding `settings.read`."""
    body = generate_latest(REGISTRY)
    try:
        stats = await upstreams.active_plugins.stats()
    except DomainError:
        stats = []  # the plugins service is away: its figures are missing from this scrape
    if stats:
        plugins = CollectorRegistry()
        plugins.register(_HookStats(stats))
        body += generate_latest(plugins)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class _HookStats(Collector):
    def __init__(self, stats: list[Any]) -> None:
        self.stats = stats

    def collect(self) -> Any:
        for what, help_text in (
            ("calls", "Calls of a plugin's hook or route"),
            ("failures", "Calls of a plugin's hook or route that raised"),
            ("timeouts", "Calls of a plugin's hook or route that ran past their deadline"),
        ):
            family = CounterMetricFamily(
                f"heron_plugin_hook_{what}", help_text, labels=["plugin", "hook"]
            )
            for stat in self.stats:
                family.add_metric([stat.plugin, stat.hook], getattr(stat, what))
            yield family
