"""SonicJS's cache plugin routes, `/admin/cache/...` (`cache.manage`), over Heron's caches.

Cache namespaces are Heron's: `gateway` (this gateway's page cache) and `content` (the content
service's row cache, which the gateway sees through Redis only: its memory tier and counters
live in the content service's processes). Keys and their metadata are shown, never the cached
values: they can hold drafts and other data outside the normal permission checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from cms.common.v1.common_pb2 import PageRequest
from cms.content.v1 import content_pb2 as pb
from fastapi import APIRouter, Path, Query
from heron_common.cache import TieredCache
from heron_common.errors import (
    DomainError,
    ErrorDetail,
    InvalidArgument,
    NotFound,
)
from heron_common.ids import now_ms
from heron_common.redis.client import REDIS_ERRORS
from heron_common.security.permissions import Principal
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from starlette.responses import Response

from heron_gateway.render import iso_from_ms, now_iso
from heron_gateway.routes.admin import ADMIN_RESPONSES, ADMIN_TAGS, CanManageCache, ok, rpc
from heron_gateway.routes.cache import NAMESPACES, namespace_cache
from heron_gateway.schemas import (
    AdminCacheInvalidate,
    AdminCacheWarm,
)
from heron_gateway.upstreams import Upstreams, UpstreamsDep

router = APIRouter(tags=ADMIN_TAGS, responses=ADMIN_RESPONSES)


# -- cache: what the gateway can see of each namespace -------------------------------------------
# The namespace whose memory tier and counters are this process's own; the other (`content`) is
# a handle on the content service's, of which only the Redis entries are visible here.
LOCAL_NAMESPACE = "gateway"
SCAN_LIMIT = 10_000
"""At most this many keys are read per namespace by one browse or one count (SCAN, never KEYS)."""
WARM_PAGE_SIZE = 50
"""The first page of a collection's items, as `GET /api/collections/{name}/content` serves it."""
WARM_CONCURRENCY = 8

NamespacePath = Annotated[
    str,
    Path(
        max_length=64,
        description="`gateway` or `content`; others are 404.",
        json_schema_extra={"enum": list(NAMESPACES)},
    ),
]


def _namespace(name: str) -> str:
    """`name` if it is one of Heron's namespaces, else SonicJS's 404."""
    if name not in NAMESPACES:
        raise NotFound(
            f"Unknown namespace: {name[:64]}",
            [ErrorDetail("namespace", f"one of: {', '.join(NAMESPACES)}")],
        )
    return name


def _selected(name: str | None) -> tuple[str, ...]:
    """Both namespaces for None or `all`, else the one named."""
    if name is None or name == "all":
        return NAMESPACES
    return (_namespace(name),)


@dataclass(frozen=True)
class _View:
    """One namespace as this gateway sees it."""

    namespace: str
    cache: TieredCache[Any]
    redis_entries: int | None  # None: no Redis, or it is not answering

    @property
    def local(self) -> bool:
        return self.namespace == LOCAL_NAMESPACE


async def cache_views(upstreams: Upstreams, names: Iterable[str] = NAMESPACES) -> list[_View]:
    views = []
    for name in names:
        cache = namespace_cache(upstreams, name)
        views.append(_View(name, cache, await cache.redis_entries()))
    return views


def _percent(part: float, whole: float) -> float:
    return round(part / whole * 100, 2) if whole else 0.0


def cache_stats_of(view: _View) -> dict[str, Any]:
    """SonicJS's CacheStats from Heron's counters: `kv*` is Redis, `dbHits` the loads that went
    to the store, `hitRate` the percentage of lookups answered by memory or Redis, `entryCount`
    the entries in Redis (shared by every process) or, without it, in this process's memory.
    Zero where the tier is not visible from the gateway (the content service's memory and
    counters); Heron's own figures are under `heron`."""
    if not view.local:
        return {
            "memoryHits": 0,
            "memoryMisses": 0,
            "kvHits": 0,
            "kvMisses": 0,
            "dbHits": 0,
            "totalRequests": 0,
            "hitRate": 0.0,
            "memorySize": 0,
            "entryCount": view.redis_entries or 0,
            "heron": {
                "namespace": view.namespace,
                "counters_visible": False,
                "redis_entries": view.redis_entries,
            },
        }
    raw = view.cache.stats()
    memory, redis = raw["memory"], raw["redis"]
    lookups = memory["hits"] + memory["misses"]
    return {
        "memoryHits": memory["hits"],
        "memoryMisses": memory["misses"],
        "kvHits": redis["hits"],
        "kvMisses": redis["misses"],
        "dbHits": raw["loads"],
        "totalRequests": lookups,
        "hitRate": _percent(memory["hits"] + redis["hits"], lookups),
        "memorySize": memory["bytes"],
        "entryCount": view.redis_entries if view.redis_entries is not None else memory["entries"],
        "heron": {**raw, "counters_visible": True, "redis_entries": view.redis_entries},
    }


def _status(stats: dict[str, Any]) -> str:
    """SonicJS's thresholds; no lookups yet is healthy."""
    if not stats["totalRequests"] or stats["hitRate"] > 70:
        return "healthy"
    return "warning" if stats["hitRate"] > 40 else "unhealthy"


def _health(view: _View) -> dict[str, Any]:
    stats = cache_stats_of(view)
    capacity = stats["heron"].get("memory", {}).get("max_bytes", 0)
    return {
        "namespace": view.namespace,
        "status": _status(stats),
        "hitRate": stats["hitRate"],
        "memoryUsage": f"{_percent(stats['memorySize'], capacity):.2f}%",
        "entryCount": stats["entryCount"],
    }


def _overall(statuses: list[str]) -> str:
    if all(s == "healthy" for s in statuses):
        return "healthy"
    return "unhealthy" if "unhealthy" in statuses else "warning"


def _reach_note(upstreams: Upstreams, names: Iterable[str]) -> dict[str, str]:
    """Without Redis the gateway cannot reach the content service's cache: say so."""
    if upstreams.redis is None and "content" in names:
        return {
            "note": "Redis is not configured: the content service's cache cannot be reached "
            "from the gateway (its entries expire within their TTL)."
        }
    return {}


# -- cache: Redis keys (never values) -----------------------------------------------------------
async def _scan(redis: Redis, match: str) -> tuple[list[bytes], bool]:
    """Up to SCAN_LIMIT key names matching `match`, and whether there were more."""
    names: dict[bytes, None] = {}  # SCAN may return a key twice
    cursor = 0
    while True:
        cursor, batch = await redis.scan(cursor, match=match, count=500)
        # The client does not decode responses; a str only comes from one that does.
        names.update(dict.fromkeys(n if isinstance(n, bytes) else n.encode() for n in batch))
        if cursor == 0 or len(names) > SCAN_LIMIT:
            return list(names)[:SCAN_LIMIT], len(names) > SCAN_LIMIT


async def _key_metadata(redis: Redis, names: list[bytes]) -> list[tuple[int, int]]:
    """(milliseconds left, bytes stored) per key; -2 ms for one gone since it was listed."""
    found: list[tuple[int, int]] = []
    for start in range(0, len(names), 500):
        pipe = redis.pipeline(transaction=False)
        for name in names[start : start + 500]:
            pipe.pttl(name)
            pipe.strlen(name)
        replies = await pipe.execute()
        found += list(zip(replies[::2], replies[1::2], strict=True))
    return found


def _parse_key(namespace: str, key: str) -> dict[str, str]:
    """What a key says: a page's caller context and request, or a row's kind and identifier."""
    if namespace == LOCAL_NAMESPACE:
        context, _, request = key.partition("|")
        return {"type": "page", "caller": context.split(":", 1)[0], "request": request}
    kind, _, identifier = key.partition(":")
    return {"type": kind, "identifier": identifier}


def _entry(namespace: str, key: str, ms_left: int, size: int, now: int) -> dict[str, Any]:
    expires = ms_left >= 0  # -1: no expiry (Heron always sets one)
    return {
        "namespace": namespace,
        "key": key,
        "size": size,
        "ttl": ms_left / 1000 if expires else None,
        "expiresAt": now + ms_left if expires else None,
        "parsed": _parse_key(namespace, key),
    }


async def _browse(
    upstreams: Upstreams, redis: Redis, namespace: str, search: str
) -> tuple[list[dict[str, Any]], bool]:
    prefix = namespace_cache(upstreams, namespace).key_prefix
    names, truncated = await _scan(redis, prefix + "*")
    wanted = search.casefold()
    keys = [(n, n.decode(errors="replace")[len(prefix) :]) for n in names]
    keys = [(n, k) for n, k in keys if wanted in k.casefold()]
    metadata = await _key_metadata(redis, [n for n, _ in keys])
    now = now_ms()
    entries = [
        _entry(namespace, key, ms_left, size, now)
        for (_, key), (ms_left, size) in zip(keys, metadata, strict=True)
        if ms_left != -2
    ]
    return entries, truncated


async def _count_matching(upstreams: Upstreams, namespace: str, pattern: str) -> int | None:
    """How many Redis entries of the namespace match a glob; None if Heron cannot tell."""
    if upstreams.redis is None:
        return None
    try:
        names, truncated = await _scan(
            upstreams.redis, namespace_cache(upstreams, namespace).key_prefix + pattern
        )
    except REDIS_ERRORS:
        return None
    return None if truncated else len(names)


# -- cache: warming -----------------------------------------------------------------------------
async def _warm_content(upstreams: Upstreams, principal: Principal) -> tuple[int, int]:
    """Read what the REST API serves first, as the caller: the collections list and the first
    page of each collection's published items. Each read fills the content service's cache.
    Returns (calls that succeeded, calls that failed); a failing list of collections raises."""
    reply = await rpc(
        upstreams, principal, upstreams.content.ListCollections, pb.ListCollectionsRequest()
    )
    gate = asyncio.Semaphore(WARM_CONCURRENCY)

    async def first_page(collection: str) -> bool:
        request = pb.ListItemsRequest(
            collection=collection, page=PageRequest(limit=WARM_PAGE_SIZE), status="published"
        )
        async with gate:
            try:
                await rpc(upstreams, principal, upstreams.content.ListItems, request)
            except DomainError:
                return False
        return True

    pages = await asyncio.gather(*(first_page(c.name) for c in reply.collections))
    return 1 + sum(pages), len(pages) - sum(pages)


def _warmed(namespace: str, warmed: int, errors: int) -> dict[str, Any]:
    return {
        "warmed": warmed,
        "errors": errors,
        "details": [{"namespace": namespace, "count": warmed}],
    }


# -- cache: shapes ------------------------------------------------------------------------------
class CacheData(BaseModel):
    success: bool
    data: dict[str, Any]
    timestamp: str


class CacheCleared(BaseModel):
    success: bool
    message: str
    namespace: str | None = Field(default=None, description="The namespace cleared (one only).")
    note: str | None = Field(default=None, description="What could not be reached.")
    timestamp: str


class CacheInvalidated(BaseModel):
    success: bool
    invalidated: int | None = Field(
        description="Redis entries that matched; null when Heron cannot tell (no Redis)."
    )
    pattern: str
    namespace: str = Field(description="The namespace, or `all`.")
    note: str | None = None
    timestamp: str


class CacheWarmDetail(BaseModel):
    namespace: str
    count: int


class CacheWarmed(BaseModel):
    success: bool
    message: str
    warmed: int = Field(description="Reads that succeeded (each filled the cache).")
    errors: int = Field(description="Reads that failed.")
    details: list[CacheWarmDetail]
    namespace: str | None = None
    count: int | None = None
    note: str | None = None
    timestamp: str


# -- cache: routes ------------------------------------------------------------------------------
@router.get("/admin/cache/stats", response_model=CacheData, summary="Cache statistics")
async def cache_stats(upstreams: UpstreamsDep, _: CanManageCache) -> Response:
    """SonicJS's CacheStats per namespace (see `GET /admin/cache/stats/{namespace}`)."""
    return ok({"data": {v.namespace: cache_stats_of(v) for v in await cache_views(upstreams)}})


@router.get(
    "/admin/cache/stats/{namespace}", response_model=CacheData, summary="A namespace's statistics"
)
async def namespace_stats(
    namespace: NamespacePath, upstreams: UpstreamsDep, _: CanManageCache
) -> Response:
    """A namespace's configuration and statistics. In the statistics, `kv*` is Redis, `dbHits`
    the loads that went to the store and `hitRate` the percentage of lookups answered by memory
    or Redis; `entryCount` counts Redis entries (every process's) or, without Redis, this
    process's memory. The content service's memory tier and counters are not visible from the
    gateway: zeros, with `heron.counters_visible: false`."""
    (view,) = await cache_views(upstreams, [_namespace(namespace)])
    settings = upstreams.settings
    config = {
        "namespace": namespace,
        "ttl": settings.cache_ttl_seconds,
        "memoryEnabled": settings.cache_enabled,
        "kvEnabled": settings.cache_enabled and upstreams.redis is not None,
        "keyPrefix": namespace_cache(upstreams, namespace).key_prefix,
        "process": "gateway" if view.local else "content service",
    }
    return ok({"data": {"namespace": namespace, "config": config, "stats": cache_stats_of(view)}})


@router.post("/admin/cache/clear", response_model=CacheCleared, summary="Clear every namespace")
async def clear_all(upstreams: UpstreamsDep, _: CanManageCache) -> Response:
    """Every tier of both namespaces, in every process (over Redis when configured). Counters
    are kept (SonicJS resets them)."""
    for name in NAMESPACES:
        await namespace_cache(upstreams, name).clear()
    return ok({"message": "All cache entries cleared", **_reach_note(upstreams, NAMESPACES)})


@router.post(
    "/admin/cache/clear/{namespace}", response_model=CacheCleared, summary="Clear a namespace"
)
async def clear_namespace(
    namespace: NamespacePath, upstreams: UpstreamsDep, _: CanManageCache
) -> Response:
    """Every tier of one namespace, in every process (over Redis when configured)."""
    await namespace_cache(upstreams, _namespace(namespace)).clear()
    return ok(
        {
            "message": f"Cache cleared for namespace: {namespace}",
            "namespace": namespace,
            **_reach_note(upstreams, [namespace]),
        }
    )


@router.post(
    "/admin/cache/invalidate", response_model=CacheInvalidated, summary="Invalidate by pattern"
)
async def invalidate(
    body: AdminCacheInvalidate, upstreams: UpstreamsDep, _: CanManageCache
) -> Response:
    """Drop the keys matching a glob from one namespace, or both, in every tier of every
    process. `invalidated` counts the matching Redis entries just before (null without Redis)."""
    if not body.pattern:
        raise InvalidArgument("Pattern is required", [ErrorDetail("pattern", "required")])
    names = _selected(body.namespace)
    counts = []
    for name in names:
        counts.append(await _count_matching(upstreams, name, body.pattern))
        await namespace_cache(upstreams, name).invalidate_pattern(body.pattern)
    known = [c for c in counts if c is not None]
    return ok(
        {
            "invalidated": sum(known) if len(known) == len(counts) else None,
            "pattern": body.pattern,
            "namespace": body.namespace or "all",
            **_reach_note(upstreams, names),
        }
    )


@router.get("/admin/cache/health", response_model=CacheData, summary="Cache health")
async def cache_health(upstreams: UpstreamsDep, _: CanManageCache) -> Response:
    """Per namespace: `healthy` above a 70 % hit rate (or before any lookup), `warning` above
    40 %, else `unhealthy`; the whole is the worst of them. `memoryUsage` is of this process's
    memory budget for the namespace."""
    namespaces = [_health(v) for v in await cache_views(upstreams)]
    status = _overall([n["status"] for n in namespaces])
    return ok({"data": {"status": status, "namespaces": namespaces, "timestamp": now_iso()}})


@router.get("/admin/cache/browser", response_model=CacheData, summary="Browse cache keys")
async def browse(
    upstreams: UpstreamsDep,
    _: CanManageCache,
    namespace: Annotated[
        str,
        Query(
            max_length=64,
            description="`all`, `gateway` or `content`.",
            json_schema_extra={"enum": ["all", *NAMESPACES]},
        ),
    ] = "all",
    search: Annotated[str, Query(max_length=200, description="Part of the key (any case).")] = "",
    sort: Annotated[
        Literal["age", "size", "key"],
        Query(description="`age`: the longest time left first (age itself is not recorded)."),
    ] = "age",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Keys and metadata (size in bytes, seconds left, expiry) of the entries in Redis, at most
    10 000 keys read per namespace (`truncated` says when there were more).

    Never the cached values: they can hold drafts and other data that the normal permission
    checks guard. Without Redis the list is empty: memory tiers are not listable."""
    names = _selected(namespace)
    entries: list[dict[str, Any]] = []
    truncated = False
    note: dict[str, str] = {}
    if upstreams.redis is None:
        note = {"note": "Redis is not configured: only Redis entries can be listed."}
    else:
        try:
            for name in names:
                found, cut = await _browse(upstreams, upstreams.redis, name, search)
                entries += found
                truncated = truncated or cut
        except REDIS_ERRORS:
            entries, note = [], {"note": "Redis is not answering."}
    if sort == "size":
        entries.sort(key=lambda e: -e["size"])
    elif sort == "key":
        entries.sort(key=lambda e: e["key"])
    else:
        entries.sort(key=lambda e: -(e["ttl"] or 0))
    shown = entries[:limit]
    data = {
        "entries": shown,
        "total": len(entries),
        "showing": len(shown),
        "namespace": namespace,
        "search": search,
        "sortBy": sort,
        "truncated": truncated,
        **note,
    }
    return ok({"data": data})


@router.get(
    "/admin/cache/browser/{namespace}/{key:path}",
    response_model=CacheData,
    summary="A cache entry's metadata",
)
async def browse_entry(
    namespace: NamespacePath,
    key: Annotated[str, Path(max_length=1000, description="The key, percent-encoded.")],
    upstreams: UpstreamsDep,
    _: CanManageCache,
) -> Response:
    """Size, seconds left and expiry of one Redis entry; never its value."""
    namespace = _namespace(namespace)
    metadata: list[tuple[int, int]] = []
    if upstreams.redis is not None:
        name = (namespace_cache(upstreams, namespace).key_prefix + key).encode()
        try:
            metadata = await _key_metadata(upstreams.redis, [name])
        except REDIS_ERRORS:
            metadata = []
    if not metadata or metadata[0][0] == -2:
        raise NotFound("Cache entry not found or expired")
    ms_left, size = metadata[0]
    entry = _entry(namespace, key, ms_left, size, now_ms())
    if entry["expiresAt"] is not None:
        entry["expiresAt"] = iso_from_ms(entry["expiresAt"])
    return ok({"data": entry})


@router.get("/admin/cache/analytics", response_model=CacheData, summary="Cache analytics")
async def analytics(upstreams: UpstreamsDep, _: CanManageCache) -> Response:
    """Totals and per-namespace rates from the statistics (hit rates are percentages)."""
    stats = {v.namespace: cache_stats_of(v) for v in await cache_views(upstreams)}
    namespaces = []
    for name, s in stats.items():
        namespaces.append(
            {
                "namespace": name,
                "hitRate": s["hitRate"],
                "totalRequests": s["totalRequests"],
                "memoryHitRate": _percent(s["memoryHits"], s["totalRequests"]),
                "kvHitRate": _percent(s["kvHits"], s["totalRequests"]),
                "avgEntrySize": round(s["memorySize"] / s["entryCount"]) if s["entryCount"] else 0,
                "totalSize": s["memorySize"],
                "entryCount": s["entryCount"],
                "dbHits": s["dbHits"],
            }
        )
    namespaces.sort(key=lambda n: -n["hitRate"])
    total_hits = sum(s["memoryHits"] + s["kvHits"] for s in stats.values())
    total_requests = sum(s["totalRequests"] for s in stats.values())
    total_size = sum(s["memorySize"] for s in stats.values())
    total_entries = sum(s["entryCount"] for s in stats.values())
    overview = {
        "totalHits": total_hits,
        "totalMisses": total_requests - total_hits,
        "totalRequests": total_requests,
        "overallHitRate": _percent(total_hits, total_requests),
        "totalSize": total_size,
        "totalEntries": total_entries,
        "avgEntrySize": round(total_size / total_entries) if total_entries else 0,
    }
    invalidation = {
        "total": sum(s["heron"].get("invalidations", 0) for s in stats.values()),
        "pending": sum(s["heron"].get("pending_invalidations", 0) for s in stats.values()),
    }
    data = {
        "overview": overview,
        "performance": {"dbQueriesAvoided": total_hits},
        "namespaces": namespaces,
        "invalidation": invalidation,
    }
    return ok({"data": data})


@router.get("/admin/cache/analytics/trends", response_model=CacheData, summary="Cache trends")
async def trends(upstreams: UpstreamsDep, _: CanManageCache) -> Response:
    """The current snapshot only, as in SonicJS: no history is kept."""
    point = {
        "timestamp": now_ms(),
        "stats": [
            {
                "namespace": v.namespace,
                "hitRate": s["hitRate"],
                "entryCount": s["entryCount"],
                "memorySize": s["memorySize"],
                "totalRequests": s["totalRequests"],
            }
            for v in await cache_views(upstreams)
            for s in [cache_stats_of(v)]
        ],
    }
    note = "Historical trends require persistent storage. This returns current snapshot only."
    return ok({"data": {"trends": [point], "note": note}})


@router.get("/admin/cache/analytics/top-keys", response_model=CacheData, summary="Top keys")
async def top_keys(
    _: CanManageCache,
    namespace: Annotated[
        str, Query(max_length=64, json_schema_extra={"enum": ["all", *NAMESPACES]})
    ] = "all",
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> Response:
    """Always empty, as in SonicJS: hits are not counted per key."""
    _selected(namespace)
    note = "Top keys tracking requires per-key hit counting, which Heron does not do."
    return ok({"data": {"topKeys": [], "note": note}})


@router.post("/admin/cache/warm", response_model=CacheWarmed, summary="Warm the caches")
async def warm(upstreams: UpstreamsDep, principal: CanManageCache) -> Response:
    """Read, as the caller, the collections list and the first page of each collection's
    published items from the content service, which caches what it loads. The gateway's pages
    are cached per caller as they are requested."""
    warmed, errors = await _warm_content(upstreams, principal)
    return ok({"message": "Cache warming completed", **_warmed("content", warmed, errors)})


@router.post(
    "/admin/cache/warm/{namespace}", response_model=CacheWarmed, summary="Warm a namespace"
)
async def warm_namespace(
    namespace: NamespacePath,
    upstreams: UpstreamsDep,
    principal: CanManageCache,
    body: AdminCacheWarm | None = None,
) -> Response:
    """`content`: as `POST /admin/cache/warm`. `gateway`: nothing is warmed, as pages are cached
    per caller's permissions when they are requested. SonicJS's `entries` are refused (400):
    Heron caches only what its services loaded, never values written from outside."""
    _namespace(namespace)
    if body is not None and body.entries is not None:
        raise InvalidArgument(
            "Heron caches only what its services loaded; entries cannot be written into the "
            "cache. Send no body to warm the namespace from the content service.",
            [ErrorDetail("entries", "not supported")],
        )
    if namespace == LOCAL_NAMESPACE:
        warmed, errors = 0, 0
        note = {
            "note": "Pages are cached per caller's permissions as they are requested; "
            "POST /admin/cache/warm/content warms what they are made from."
        }
    else:
        warmed, errors = await _warm_content(upstreams, principal)
        note = {}
    return ok(
        {
            "message": f"Warmed {warmed} entries in namespace: {namespace}",
            "namespace": namespace,
            "count": warmed,
            **_warmed(namespace, warmed, errors),
            **note,
        }
    )
