"""Content items: list (all or per collection), read, create, update, delete."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated

import orjson
from cms.common.v1.common_pb2 import Idempotency, PageRequest
from cms.content.v1 import content_pb2 as pb
from fastapi import APIRouter, Depends, Header, Query, Request
from heron_common.errors import ErrorDetail, InvalidArgument, NotFound
from heron_common.jsondoc import check_json_document
from heron_common.limits import DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE
from heron_common.query import MAX_PARAMETER_LENGTH, OPERATORS, SONIC_OPERATORS, parse_list_query
from heron_common.rpc.client import call, call_with_tags
from heron_common.security.permissions import Principal
from starlette.responses import Response

from heron_gateway.preconditions import IfMatch, conditional_call
from heron_gateway.render import (
    item_json,
    item_response,
    json_response,
    now_iso,
    page_meta,
    page_response,
    projected_item_json,
)
from heron_gateway.schemas import (
    ERROR_RESPONSES,
    PRECONDITION_RESPONSES,
    Deleted,
    ItemCreate,
    ItemEnvelope,
    ItemList,
    ItemStatus,
    ItemUpdate,
    ScheduleBody,
    StatusChange,
    VersionGuard,
)
from heron_gateway.security import Access
from heron_gateway.settings import GatewaySettings
from heron_gateway.upstreams import SettingsDep, Upstreams, UpstreamsDep

router = APIRouter(tags=["content"], responses=ERROR_RESPONSES)

# What each route needs at the door; the content service checks ownership (`:own`) and draft
# visibility itself, on the verified token the gateway forwards.
CanRead = Annotated[Principal, Depends(Access("content.read"))]
CanCreate = Annotated[Principal, Depends(Access("content.create"))]
CanUpdate = Annotated[Principal, Depends(Access("content.update"))]
CanDelete = Annotated[Principal, Depends(Access("content.delete"))]

Limit = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size (1 to {MAX_PAGE_SIZE}).")
]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
Status = Annotated[
    ItemStatus | None,
    Query(description="Only items with this status."),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=128,
        description="Repeating a create with the same key returns the first result.",
    ),
]


FilterParam = Annotated[
    str | None,
    Query(
        alias="filter",
        max_length=MAX_PARAMETER_LENGTH,
        description='A filter as JSON, e.g. `{"data.price":{"_gte":10}}`; the same as brackets '
        "(`filter[data.price][_gte]=10`). Operators: "
        + ", ".join(sorted(OPERATORS))
        + "; `_and`, `_or`, `_not` nest them. Fields: the item's own (id, title, slug, status, "
        "author_id, created_at, updated_at, published_at, version) and `data.<field>` paths, "
        "through a reference to the fields of the item it points to (`data.author.name`).",
    ),
]
WhereParam = Annotated[
    str | None,
    Query(
        max_length=MAX_PARAMETER_LENGTH,
        description='SonicJS\'s filter: `{"and":[{"field":"data.price",'
        '"operator":"greater_than_equal","value":10}],"or":[...]}` with its operators ('
        + ", ".join(SONIC_OPERATORS)
        + ").",
    ),
]
SortParam = Annotated[
    str | None,
    Query(
        max_length=1000,
        description="Comma-separated fields, `-` for descending (`-published_at,title`), or "
        'SonicJS\'s `[{"field":"created_at","order":"desc"}]`. Default `-created_at`; the id '
        "always breaks ties.",
    ),
]
FieldsParam = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="Only these fields in each item, e.g. `title,slug,data.price` (the id always).",
    ),
]
MetaParam = Annotated[
    str | None,
    Query(
        max_length=100,
        description="`total`: count every match into `meta.total` (a second query; without "
        "it there is no total, and `meta.next_cursor` tells whether more follow).",
    ),
]
IncludeParam = Annotated[
    str | None,
    Query(
        max_length=1000,
        description="Reference fields to expand into the items they point to, e.g. "
        "`data.author,data.tags`; `data.author.org` goes one level further (at most 3). An "
        "item you may not see stays its id. One query per level, whatever the page size.",
    ),
]
SearchParam = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Words to find in the title and text fields (every one of them, any case); "
        "best matches first unless `sort` is given.",
    ),
]
CursorParam = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="`meta.next_cursor` of the previous page: the next page of the same "
        "filter and sort, stable while items come and go (instead of `offset`).",
    ),
]


async def _list(
    request: Request,
    principal: Principal,
    upstreams: Upstreams,
    settings: GatewaySettings,
    collection: str,
    limit: int,
    offset: int,
    status: str | None,
    cursor: str | None,
) -> Response:
    query = parse_list_query(request.query_params.multi_items())
    reply, tags = await call_with_tags(
        upstreams.content.ListItems,
        pb.ListItemsRequest(
            collection=collection,
            page=PageRequest(limit=limit, offset=offset, cursor=cursor or ""),
            status=status or "",
            query_json=query.to_bytes(),
        ),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    if query.fields:
        data = [projected_item_json(i, query.fields) for i in reply.items]
    else:
        data = [item_json(i) for i in reply.items]
    meta = page_meta(len(data), reply.page, limit, offset)
    return page_response({"data": data, "meta": meta}, tags)


@router.get("/api/content", response_model=ItemList, summary="List items")
async def list_items(
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanRead,
    collection: Annotated[str | None, Query(description="A collection name or id.")] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
    status: Status = None,
    filter_: FilterParam = None,
    where: WhereParam = None,
    sort: SortParam = None,
    fields: FieldsParam = None,
    meta: MetaParam = None,
    include: IncludeParam = None,
    search: SearchParam = None,
    cursor: CursorParam = None,
) -> Response:
    """Items of every collection, or of one with `?collection=`, newest first, filtered and
    sorted by the query language (on the item's own fields; a collection's `data` fields
    through `/api/collections/{name}/content` or `?collection=`). An unknown collection is an
    empty page whose `meta.message` says so, as in SonicJS (the per-collection route answers
    404)."""
    try:
        return await _list(
            request,
            principal,
            upstreams,
            settings,
            collection or "",
            limit,
            offset,
            status,
            cursor,
        )
    except NotFound as exc:
        if not collection:
            raise
        not_found = exc
    empty_meta = {
        "count": 0,
        "total": 0,
        "limit": limit,
        "offset": offset,
        "next_cursor": None,
        "timestamp": now_iso(),
        "message": f"Collection '{collection[:80]}' not found",
    }
    # Cached under the tags the content service named for its "not found" (the caller's text
    # never goes into a header); without them, not cached at all.
    return page_response({"data": [], "meta": empty_meta}, list(not_found.cache_tags) or None)


@router.get(
    "/api/collections/{name}/content", response_model=ItemList, summary="List a collection's items"
)
async def list_collection_items(
    request: Request,
    name: str,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanRead,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
    status: Status = None,
    filter_: FilterParam = None,
    where: WhereParam = None,
    sort: SortParam = None,
    fields: FieldsParam = None,
    meta: MetaParam = None,
    include: IncludeParam = None,
    search: SearchParam = None,
    cursor: CursorParam = None,
) -> Response:
    """Items of one collection, newest first, or as the query language filters and sorts
    them (see the README's "Queries")."""
    return await _list(request, principal, upstreams, settings, name, limit, offset, status, cursor)


@router.get("/api/content/{item_id}", response_model=ItemEnvelope, summary="Get an item")
async def get_item(
    item_id: str, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanRead
) -> Response:
    """One item, with its `ETag` (the tag `If-Match` takes)."""
    reply, tags = await call_with_tags(
        upstreams.content.GetItem,
        pb.GetItemRequest(id=item_id),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return item_response(reply, tags=tags)


@router.post("/api/content", response_model=ItemEnvelope, status_code=201, summary="Create an item")
async def create_item(
    body: ItemCreate,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanCreate,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create an item in a collection; `data` is checked against the collection's schema."""
    collection = body.collectionId or body.collection
    if not collection:
        raise InvalidArgument(
            "collectionId is required", [ErrorDetail("collectionId", "name or id of a collection")]
        )
    check_json_document(body.data, "data")
    request = pb.CreateItemRequest(
        collection=collection,
        title=body.title,
        slug=body.slug,
        data_json=orjson.dumps(body.data),
        status=body.status,
        idempotency=Idempotency(key=idempotency_key or ""),
    )
    reply = await call(
        upstreams.content.CreateItem,
        request,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return item_response(reply, status=201, headers={"Location": f"/api/content/{reply.id}"})


async def _update(
    principal: Principal,
    item_id: str,
    body: ItemUpdate,
    upstreams: Upstreams,
    settings: GatewaySettings,
    replace: bool,
    if_match: str | None,
) -> Response:
    request = pb.UpdateItemRequest(id=item_id, replace_data=replace)
    if body.title is not None:
        request.title = body.title
    if body.slug is not None:
        request.slug = body.slug
    if body.status is not None:
        request.status = body.status
    if body.data is not None:
        check_json_document(body.data, "data")
        request.data_json = orjson.dumps(body.data)
    if body.comment is not None:
        request.comment = body.comment
    return await _item_write(
        upstreams.content.UpdateItem, principal, request, settings, if_match, body.version
    )


async def _item_write(
    method: Callable[..., Awaitable[pb.Item]],
    principal: Principal,
    request: pb.UpdateItemRequest | pb.ScheduleItemRequest,
    settings: GatewaySettings,
    if_match: str | None,
    version: int | None,
) -> Response:
    """A conditional write of the item `request.id` that answers with the item."""
    reply = await conditional_call(
        method,
        request,
        request.id,
        if_match=if_match,
        version=version,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return item_response(reply)


@router.put(
    "/api/content/{item_id}",
    response_model=ItemEnvelope,
    summary="Update an item",
    responses=PRECONDITION_RESPONSES,
)
async def replace_item(
    item_id: str,
    body: ItemUpdate,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
    if_match: IfMatch = None,
) -> Response:
    """Set the given fields; `data`, when given, replaces the item's data as a whole."""
    return await _update(principal, item_id, body, upstreams, settings, True, if_match)


@router.patch(
    "/api/content/{item_id}",
    response_model=ItemEnvelope,
    summary="Patch an item",
    responses=PRECONDITION_RESPONSES,
)
async def patch_item(
    item_id: str,
    body: ItemUpdate,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
    if_match: IfMatch = None,
) -> Response:
    """Set the given fields; `data`, when given, is merged key by key into the item's data."""
    return await _update(principal, item_id, body, upstreams, settings, False, if_match)


async def _set_status(
    principal: Principal,
    item_id: str,
    status: str,
    body: StatusChange | None,
    upstreams: Upstreams,
    settings: GatewaySettings,
    if_match: str | None,
) -> Response:
    request = pb.UpdateItemRequest(id=item_id, status=status)
    if body is not None and body.comment is not None:
        request.comment = body.comment
    version = body.version if body is not None else None
    return await _item_write(
        upstreams.content.UpdateItem, principal, request, settings, if_match, version
    )


@router.post(
    "/api/content/{item_id}/publish",
    response_model=ItemEnvelope,
    summary="Publish",
    responses=PRECONDITION_RESPONSES,
)
async def publish_item(
    item_id: str,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
    body: StatusChange | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Make the item public (needs `content.publish`); `published_at` is set the first time."""
    return await _set_status(principal, item_id, "published", body, upstreams, settings, if_match)


@router.post(
    "/api/content/{item_id}/unpublish",
    response_model=ItemEnvelope,
    summary="Unpublish",
    responses=PRECONDITION_RESPONSES,
)
async def unpublish_item(
    item_id: str,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
    body: StatusChange | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Take the item back to draft (needs `content.publish`)."""
    return await _set_status(principal, item_id, "draft", body, upstreams, settings, if_match)


@router.post(
    "/api/content/{item_id}/archive",
    response_model=ItemEnvelope,
    summary="Archive",
    responses=PRECONDITION_RESPONSES,
)
async def archive_item(
    item_id: str,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
    body: StatusChange | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Archive the item: no longer public, kept with its history (needs `content.publish`)."""
    return await _set_status(principal, item_id, "archived", body, upstreams, settings, if_match)


def _moment(value: int | dt.datetime) -> int:
    """Epoch milliseconds from either spelling of a moment (no offset: UTC)."""
    if isinstance(value, int):
        return value
    moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


@router.post(
    "/api/content/{item_id}/schedule",
    response_model=ItemEnvelope,
    summary="Schedule publishing and unpublishing",
    responses=PRECONDITION_RESPONSES,
)
async def schedule_item(
    item_id: str,
    body: ScheduleBody,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
    if_match: IfMatch = None,
) -> Response:
    """Have the item published at `publish_at` and/or taken back to draft at `unpublish_at`
    (both in the future; needs `content.publish`). The schedule shows on the item
    (`scheduled_publish_at`, `scheduled_unpublish_at`, and `schedule_error` if a change could
    not be made); the change happens within about a second of its time, exactly once."""
    if body.publish_at is None and body.unpublish_at is None:  # before any precondition
        raise InvalidArgument(
            "give publish_at, unpublish_at or both",
            [ErrorDetail("publish_at", "give publish_at, unpublish_at or both")],
        )
    request = pb.ScheduleItemRequest(id=item_id)
    if body.publish_at is not None:
        request.publish_at = _moment(body.publish_at)
    if body.unpublish_at is not None:
        request.unpublish_at = _moment(body.unpublish_at)
    return await _item_write(
        upstreams.content.ScheduleItem, principal, request, settings, if_match, body.version
    )


@router.delete(
    "/api/content/{item_id}/schedule",
    response_model=ItemEnvelope,
    summary="Cancel scheduled publishing",
    responses=PRECONDITION_RESPONSES,
)
async def unschedule_item(
    item_id: str,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
    if_match: IfMatch = None,
) -> Response:
    """Clear the item's scheduled publishing and unpublishing."""
    request = pb.ScheduleItemRequest(id=item_id, cancel=True)
    return await _item_write(
        upstreams.content.ScheduleItem, principal, request, settings, if_match, None
    )


@router.delete(
    "/api/content/{item_id}",
    response_model=Deleted,
    summary="Delete an item",
    responses=PRECONDITION_RESPONSES,
)
async def delete_item(
    item_id: str,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanDelete,
    body: VersionGuard | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Delete the item (its revisions go with it). With `If-Match` (412) or `"version": N`
    (409) only while it is at that version."""
    await conditional_call(
        upstreams.content.DeleteItem,
        pb.DeleteItemRequest(id=item_id),
        item_id,
        if_match=if_match,
        version=body.version if body else None,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"success": True})
