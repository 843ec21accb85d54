"""Collections: list, read, create, update, delete."""

from __future__ import annotations

from typing import Annotated

import orjson
from cms.content.v1 import content_pb2 as pb
from fastapi import APIRouter, Depends
from heron_common.jsondoc import check_json_document
from heron_common.rpc.client import call, call_with_tags
from heron_common.security.permissions import Principal
from starlette.responses import Response

from heron_gateway.render import collection_json, json_response, now_iso, page_response
from heron_gateway.schemas import (
    ERROR_RESPONSES,
    CollectionCreate,
    CollectionEnvelope,
    CollectionList,
    CollectionUpdate,
    Deleted,
)
from heron_gateway.security import Access
from heron_gateway.upstreams import SettingsDep, UpstreamsDep

CanRead = Annotated[Principal, Depends(Access("collections.read"))]
CanCreate = Annotated[Principal, Depends(Access("collections.create"))]
CanUpdate = Annotated[Principal, Depends(Access("collections.update"))]
CanDelete = Annotated[Principal, Depends(Access("collections.delete"))]

router = APIRouter(prefix="/api/collections", tags=["collections"], responses=ERROR_RESPONSES)


@router.get("", response_model=CollectionList, summary="List collections")
async def list_collections(
    upstreams: UpstreamsDep, settings: SettingsDep, principal: CanRead
) -> Response:
    """Every collection with its field schema."""
    reply, tags = await call_with_tags(
        upstreams.content.ListCollections,
        pb.ListCollectionsRequest(),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    data = [collection_json(c) for c in reply.collections]
    return page_response({"data": data, "meta": {"count": len(data), "timestamp": now_iso()}}, tags)


@router.get("/{name}", response_model=CollectionEnvelope, summary="Get a collection")
async def get_collection(
    name: str, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanRead
) -> Response:
    """One collection by name (or id)."""
    reply, tags = await call_with_tags(
        upstreams.content.GetCollection,
        pb.GetCollectionRequest(collection=name),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return page_response({"data": collection_json(reply)}, tags)


@router.post("", response_model=CollectionEnvelope, status_code=201, summary="Create a collection")
async def create_collection(
    body: CollectionCreate, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanCreate
) -> Response:
    """Create a collection; `schema` declares its fields (`properties`, `required`)."""
    check_json_document(body.schema_, "schema")
    request = pb.CreateCollectionRequest(
        name=body.name,
        display_name=body.display_name,
        description=body.description,
        schema_json=orjson.dumps(body.schema_) if body.schema_ is not None else b"",
    )
    reply = await call(
        upstreams.content.CreateCollection,
        request,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response(
        {"data": collection_json(reply)},
        status=201,
        headers={"Location": f"/api/collections/{reply.name}"},
    )


# One route per method: each gets an operation id of its own in the OpenAPI document.
@router.put("/{name}", response_model=CollectionEnvelope, summary="Update a collection")
@router.patch("/{name}", response_model=CollectionEnvelope, summary="Update a collection")
async def update_collection(
    name: str,
    body: CollectionUpdate,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
) -> Response:
    """Change the display name, description or field schema; the name is permanent."""
    request = pb.UpdateCollectionRequest(collection=name, confirm=body.confirm)
    if body.display_name is not None:
        request.display_name = body.display_name
    if body.description is not None:
        request.description = body.description
    if body.schema_ is not None:
        check_json_document(body.schema_, "schema")
        request.schema_json = orjson.dumps(body.schema_)
    reply = await call(
        upstreams.content.UpdateCollection,
        request,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": collection_json(reply)})


@router.delete("/{name}", response_model=Deleted, summary="Delete an empty collection")
async def delete_collection(
    name: str, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanDelete
) -> Response:
    """Delete a collection; refused with 409 while it still has items."""
    await call(
        upstreams.content.DeleteCollection,
        pb.DeleteCollectionRequest(collection=name),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"success": True})
