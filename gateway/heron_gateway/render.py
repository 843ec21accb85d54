"""Protobuf messages → public JSON (SonicJS shapes), serialized once with orjson.

Item data and collection schemas arrive as JSON bytes and are embedded as they are
(`orjson.Fragment`), never parsed and re-encoded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from cms.content.v1 import content_pb2 as pb
from starlette.responses import Response


def collection_json(c: pb.Collection) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "display_name": c.display_name,
        "description": c.description,
        "schema": orjson.Fragment(c.schema_json or b"{}"),
        "managed": c.managed,
        "is_active": True,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
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
        "published_at": i.published_at or None,
    }


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )
