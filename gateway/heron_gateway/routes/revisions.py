"""An item's history: its revisions, one per change, and restoring one."""

from __future__ import annotations

from typing import Annotated

from cms.common.v1.common_pb2 import PageRequest
from cms.content.v1 import content_pb2 as pb
from fastapi import APIRouter, Depends, Path, Query
from heron_common.limits import DEFAULT_REVISIONS_PAGE_SIZE, MAX_REVISIONS_PAGE_SIZE
from heron_common.rpc.client import call
from heron_common.security.permissions import Principal
from starlette.responses import Response

from heron_gateway.preconditions import IfMatch, conditional_call
from heron_gateway.render import item_response, json_response, now_iso, revision_json
from heron_gateway.schemas import (
    ERROR_RESPONSES,
    PRECONDITION_RESPONSES,
    ItemEnvelope,
    RevisionEnvelope,
    RevisionList,
    VersionGuard,
)
from heron_gateway.security import Access
from heron_gateway.upstreams import SettingsDep, UpstreamsDep

router = APIRouter(tags=["content"], responses=ERROR_RESPONSES)

CanRead = Annotated[Principal, Depends(Access("content.read"))]
CanUpdate = Annotated[Principal, Depends(Access("content.update"))]
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="The revision's version number.")]


@router.get(
    "/api/content/{item_id}/revisions",
    response_model=RevisionList,
    summary="List an item's revisions",
)
async def list_revisions(
    item_id: str,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanRead,
    limit: Annotated[int, Query(ge=1, le=MAX_REVISIONS_PAGE_SIZE)] = DEFAULT_REVISIONS_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """Newest first. A revision made while the item was not published is shown only to those
    who may see the item's drafts."""
    reply = await call(
        upstreams.content.ListRevisions,
        pb.ListRevisionsRequest(item_id=item_id, page=PageRequest(limit=limit, offset=offset)),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    data = [revision_json(r) for r in reply.revisions]
    meta = {
        "count": len(data),
        "total": reply.page.total,
        "limit": limit,
        "offset": offset,
        "timestamp": now_iso(),
    }
    return json_response({"data": data, "meta": meta})


@router.get(
    "/api/content/{item_id}/revisions/{version}",
    response_model=RevisionEnvelope,
    summary="Read one revision of an item",
)
async def get_revision(
    item_id: str,
    version: Version,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanRead,
) -> Response:
    reply = await call(
        upstreams.content.GetRevision,
        pb.GetRevisionRequest(item_id=item_id, version=version),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": revision_json(reply)})


@router.post(
    "/api/content/{item_id}/revisions/{version}/restore",
    response_model=ItemEnvelope,
    responses=PRECONDITION_RESPONSES,
    summary="Restore an item to one of its revisions",
)
async def restore_revision(
    item_id: str,
    version: Version,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
    body: VersionGuard | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Sets the item's title, slug and data to the revision's, checked against the
    collection's schema as it is today; the status stays. The restore is a new revision. With
    `If-Match` (412) or `"version": N` (409) it is refused if the item changed since."""
    reply = await conditional_call(
        upstreams.content.RestoreRevision,
        pb.RestoreRevisionRequest(item_id=item_id, version=version),
        item_id,
        if_match=if_match,
        version=body.version if body else None,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return item_response(reply)
