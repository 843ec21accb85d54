"""Protobuf messages → public JSON (SonicJS shapes), serialized once with orjson.

Item data and collection schemas arrive as JSON bytes and are embedded as they are
(`orjson.Fragment`), never parsed and re-encoded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from cms.auth.v1 import auth_pb2
from cms.common.v1 import common_pb2
from cms.content.v1 import content_pb2 as pb
from starlette.responses import Response

from heron_gateway.preconditions import item_etag


def collection_json(c: pb.Collection) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "display_name": c.display_name,
        "description": c.description,
        "schema": orjson.Fragment(c.schema_json or b"{}"),
        "managed": c.managed,
        # SonicJS's integer flag; `active` is the same as a boolean.
        "is_active": 1,
        "active": True,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "version": c.version,
        "source": c.source or None,
    }


def item_json(i: pb.Item) -> dict[str, Any]:
    return {
        "id": i.id,
        "title": i.title,
        "slug": i.slug,
        "status": i.status,
        "collectionId": i.collection_id,
        "collection": i.collection_name,
        "data": orjson.Fragment(i.data_json or b"{}"),
        "author_id": i.author_id,
        "version": i.version,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
        "published_at": i.published_at if i.HasField("published_at") else None,
        "scheduled_publish_at": (
            i.scheduled_publish_at if i.HasField("scheduled_publish_at") else None
        ),
        "scheduled_unpublish_at": (
            i.scheduled_unpublish_at if i.HasField("scheduled_unpublish_at") else None
        ),
        "schedule_error": i.schedule_error or None,
    }


def revision_json(r: pb.Revision) -> dict[str, Any]:
    return {
        "version": r.version,
        "itemId": r.item_id,
        "action": r.action,
        "status": r.status,
        "title": r.title,
        "slug": r.slug,
        "data": orjson.Fragment(r.data_json or b"{}"),
        "author_id": r.author_id,
        "created_at": r.created_at,
    }


def user_json(u: auth_pb2.User) -> dict[str, Any]:
    return {
        "id": u.id,
        "email": u.email,
        "username": u.username,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "display_name": u.display_name,
        "role": u.role,
        "status": u.status,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
        "last_login_at": u.last_login_at if u.HasField("last_login_at") else None,
    }


def role_json(r: auth_pb2.Role) -> dict[str, Any]:
    return {
        "name": r.name,
        "description": r.description,
        "permissions": list(r.permissions),
        "builtin": r.builtin,
    }


def api_token_json(t: auth_pb2.ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "prefix": t.prefix,
        "permissions": list(t.permissions) or None,
        "created_at": t.created_at,
        "expires_at": t.expires_at if t.HasField("expires_at") else None,
        "last_used_at": t.last_used_at if t.HasField("last_used_at") else None,
        "revoked_at": t.revoked_at if t.HasField("revoked_at") else None,
    }


def now_iso() -> str:
    return _iso(dt.datetime.now(dt.UTC))


def page_meta(count: int, page: common_pb2.PageInfo, limit: int, offset: int) -> dict[str, Any]:
    """A list's `meta`: its count, its total when counted, the page asked for, the next cursor."""
    meta: dict[str, Any] = {"count": count}
    if page.HasField("total"):
        meta["total"] = page.total
    meta |= {
        "limit": limit,
        "offset": offset,
        "next_cursor": page.next_cursor or None,
        "timestamp": now_iso(),
    }
    return meta


def iso_from_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 in UTC (`2026-12-01T17:35:48.827Z`)."""
    return _iso(dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC))


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The cache tags a page depends on, as its service said, for the page cache (never sent out).
CACHE_TAGS_HEADER = "x-heron-cache-tags"


def page_response(
    body: Any, tags: list[str] | None, headers: dict[str, str] | None = None
) -> Response:
    """A cacheable answer: `body` as JSON, stored by the page cache under `tags` (not at all
    without them)."""
    if tags:
        headers = {**(headers or {}), CACHE_TAGS_HEADER: ",".join(tags)}
    return json_response(body, headers=headers)


def projected_item_json(i: pb.Item, fields: tuple[str, ...]) -> dict[str, Any]:
    """An item with only the requested fields (its id always; `data` already projected by the
    content service, so present once any `data.` field is asked for)."""
    full = item_json(i)
    wanted = {"id", *(f for f in fields if "." not in f)}
    if any(f.startswith("data.") for f in fields):
        wanted.add("data")
    return {k: v for k, v in full.items() if k in wanted}


def item_response(
    item: pb.Item,
    *,
    status: int = 200,
    tags: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One item, with the `ETag` a conditional write names it by (heron_gateway.preconditions)."""
    headers = {**(headers or {}), "ETag": item_etag(item.id, item.version)}
    if status == 200:
        return page_response({"data": item_json(item)}, tags, headers)
    return json_response({"data": item_json(item)}, status=status, headers=headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )
