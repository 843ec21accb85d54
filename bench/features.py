"""Which Heron features exist, found by asking the running gateway (never assumed).

Scenarios that need a missing feature are reported as "n/a (not built yet)". When a feature
lands, check that its probe here matches how it was built:
- auth:    the OpenAPI document has `/auth/login`.
- media:   the OpenAPI document has a path under `/api/media`.
- plugins: the OpenAPI document has a path under `/api/plugins`.
- filters: the collection-list endpoint takes a `sort` or `filter` query parameter.
- keyset:  the collection-list endpoint takes a `cursor` (or `after`) query parameter.
- include: the collection-list endpoint takes an `include` query parameter.
- search:  the collection-list endpoint takes a `search` query parameter.
- cache:   a repeated item read answers with an `X-Cache-Status: HIT` header.
"""

from __future__ import annotations

from typing import Any

import httpx

FEATURES = ("cache", "filters", "keyset", "include", "search", "auth", "media", "plugins")
LIST_PATH = "/api/collections/{name}/content"


def _list_parameters(openapi: dict[str, Any]) -> set[str]:
    operation = openapi.get("paths", {}).get(LIST_PATH, {}).get("get", {})
    return {str(p.get("name", "")) for p in operation.get("parameters", [])}


def detect(base_url: str, item_path: str) -> dict[str, bool]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        reply = client.get("/openapi.json")
        openapi: dict[str, Any] = reply.json() if reply.status_code == 200 else {}
        client.get(item_path)
        cached = client.get(item_path).headers.get("x-cache-status", "").upper() == "HIT"
    paths = set(openapi.get("paths", {}))
    params = _list_parameters(openapi)
    return {
        "cache": cached,
        "filters": bool(params & {"sort", "filter"}),
        "keyset": bool(params & {"cursor", "after"}),
        "include": "include" in params,
        "search": "search" in params,
        "auth": "/auth/login" in paths,
        "media": any(p.startswith("/api/media") for p in paths),
        "plugins": any(p.startswith("/api/plugins") for p in paths),
    }
