"""gRPC servicer: protobuf messages ⇄ content use cases, nothing else."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
from cms.common.v1 import common_pb2
from cms.content.v1 import content_pb2 as pb
from cms.content.v1 import content_pb2_grpc
from heron_common.cache.tags import media_tags, tags_metadata
from heron_common.errors import ErrorDetail, InvalidArgument
from heron_common.limits import (
    DEFAULT_REVISIONS_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_REVISIONS_PAGE_SIZE,
)
from heron_common.query import ListQuery
from heron_common.rpc.paging import page_bounds
from heron_common.security.authz import PUBLIC, current_principal

from heron_content.caching import ALL_COLLECTIONS, collection_tags, item_key
from heron_content.policy import sees_unpublished
from heron_content.repository import Collection, Item, Revision
from heron_content.service import ContentService
from heron_content.service.items import NewItem

Context = grpc.aio.ServicerContext[Any, Any]

# What each method needs (checked before it runs; undeclared methods are refused). Ownership
# and draft visibility are checked by the service (heron_content.policy).
POLICY: dict[str, str] = {
    "CreateCollection": "collections.create",
    "GetCollection": "collections.read",
    "ListCollections": "collections.read",
    "UpdateCollection": "collections.update",
    "DeleteCollection": "collections.delete",
    "CreateItem": "content.create",
    "ImportItems": "content.create",
    "GetItem": "content.read",
    "ListItems": "content.read",
    "UpdateItem": "content.update",
    "DeleteItem": "content.delete",
    "ScheduleItem": "content.update",
    "ListRevisions": "content.read",
    "GetRevision": "content.read",
    "RestoreRevision": "content.update",
    "PublishedMedia": "content.read",
}
assert PUBLIC not in POLICY.values()  # nothing about content is open to unverified callers


def _json(raw: bytes, field: str) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(
            f"{field} is not valid JSON", [ErrorDetail(field, str(exc))]
        ) from None


def collection_message(row: Collection) -> pb.Collection:
    return pb.Collection(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        description=row.description,
        schema_json=orjson.dumps(row.schema),
        managed=row.managed,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        source=row.source,
    )


def item_message(row: Item) -> pb.Item:
    """The item for its caller: its schedule only for callers who may see its drafts."""
    message = pb.Item(
        id=row.id,
        collection_id=row.collection_id,
        collection_name=row.collection_name,
        title=row.title,
        slug=row.slug,
        data_json=row.data.encode(),
        status=row.status,
        author_id=row.author_id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        published_at=row.published_at,
    )
    if (
        row.publish_at is not None or row.unpublish_at is not None or row.schedule_error
    ) and sees_unpublished(current_principal(), row.author_id):
        if row.publish_at is not None:
            message.scheduled_publish_at = row.publish_at
        if row.unpublish_at is not None:
            message.scheduled_unpublish_at = row.unpublish_at
        message.schedule_error = row.schedule_error
    return message


def revision_message(row: Revision) -> pb.Revision:
    return pb.Revision(
        item_id=row.item_id,
        version=row.version,
        action=row.action,
        status=row.status,
        title=row.title,
        slug=row.slug,
        data_json=row.data.encode(),
        author_id=row.author_id,
        created_at=row.created_at,
    )


class ContentServicer(content_pb2_grpc.ContentServiceServicer):
    def __init__(self, service: ContentService) -> None:
        self.service = service

    async def CreateCollection(
        self, request: pb.CreateCollectionRequest, context: Context
    ) -> pb.Collection:
        row = await self.service.collections.create(
            name=request.name,
            display_name=request.display_name,
            description=request.description,
            schema=_json(request.schema_json, "schema"),
            managed=request.managed,
        )
        return collection_message(row)

    async def GetCollection(
        self, request: pb.GetCollectionRequest, context: Context
    ) -> pb.Collection:
        row = await self.service.collections.get(request.collection)
        context.set_trailing_metadata(tags_metadata(collection_tags(row)))
        return collection_message(row)

    async def ListCollections(
        self, request: pb.ListCollectionsRequest, context: Context
    ) -> pb.ListCollectionsResponse:
        rows = await self.service.collections.list()
        context.set_trailing_metadata(tags_metadata([ALL_COLLECTIONS]))
        return pb.ListCollectionsResponse(collections=[collection_message(r) for r in rows])

    async def UpdateCollection(
        self, request: pb.UpdateCollectionRequest, context: Context
    ) -> pb.Collection:
        schema_set = request.HasField("schema_json")
        row = await self.service.collections.update(
            request.collection,
            display_name=request.display_name if request.HasField("display_name") else None,
            description=request.description if request.HasField("description") else None,
            schema=_json(request.schema_json, "schema") if schema_set else None,
            schema_set=schema_set,
            confirm=request.confirm,
            writer=current_principal().user_id,
        )
        return collection_message(row)

    async def DeleteCollection(
        self, request: pb.DeleteCollectionRequest, context: Context
    ) -> pb.DeleteCollectionResponse:
        await self.service.collections.delete(request.collection)
        return pb.DeleteCollectionResponse()

    async def CreateItem(self, request: pb.CreateItemRequest, context: Context) -> pb.Item:
        row = await self.service.items.create(
            current_principal(),
            collection=request.collection,
            title=request.title,
            slug=request.slug,
            data=_json(request.data_json, "data"),
            status=request.status,
            idempotency_key=request.idempotency.key,
        )
        return item_message(row)

    async def ImportItems(
        self, request: pb.ImportItemsRequest, context: Context
    ) -> pb.ImportItemsResponse:
        new = [
            NewItem(
                title=one.title,
                slug=one.slug,
                data=_json(one.data_json, f"items[{index}].data"),
                status=one.status,
            )
            for index, one in enumerate(request.items)
        ]
        rows = await self.service.items.import_many(current_principal(), request.collection, new)
        return pb.ImportItemsResponse(ids=[row.id for row in rows])

    async def GetItem(self, request: pb.GetItemRequest, context: Context) -> pb.Item:
        row = await self.service.items.get(current_principal(), request.id)
        upcoming = self.service.cache.upcoming.tags()
        context.set_trailing_metadata(tags_metadata([item_key(row.id), *upcoming]))
        return item_message(row)

    async def ListItems(
        self, request: pb.ListItemsRequest, context: Context
    ) -> pb.ListItemsResponse:
        listed = await self.service.items.list(
            current_principal(),
            collection=request.collection,
            page=page_bounds(request.page, MAX_PAGE_SIZE),
            status=request.status,
            query=ListQuery.from_bytes(request.query_json),
            cursor=request.page.cursor,
        )
        upcoming = self.service.cache.upcoming.tags()
        context.set_trailing_metadata(tags_metadata([*listed.tags, *upcoming]))
        info = common_pb2.PageInfo(next_cursor=listed.next_cursor)
        if listed.total is not None:
            info.total = listed.total
        return pb.ListItemsResponse(items=[item_message(r) for r in listed.rows], page=info)

    async def UpdateItem(self, request: pb.UpdateItemRequest, context: Context) -> pb.Item:
        data_set = request.HasField("data_json")
        row = await self.service.items.update(
            current_principal(),
            request.id,
            title=request.title if request.HasField("title") else None,
            slug=request.slug if request.HasField("slug") else None,
            data=_json(request.data_json, "data") if data_set else None,
            data_set=data_set,
            status=request.status if request.HasField("status") else None,
            replace_data=request.replace_data,
            expected_version=(
                request.expected_version if request.HasField("expected_version") else None
            ),
            comment=request.comment[:1000],
        )
        return item_message(row)

    async def ScheduleItem(self, request: pb.ScheduleItemRequest, context: Context) -> pb.Item:
        row = await self.service.items.schedule(
            current_principal(),
            request.id,
            publish_at=request.publish_at if request.HasField("publish_at") else None,
            unpublish_at=request.unpublish_at if request.HasField("unpublish_at") else None,
            cancel=request.cancel,
            expected_version=(
                request.expected_version if request.HasField("expected_version") else None
            ),
        )
        return item_message(row)

    async def DeleteItem(
        self, request: pb.DeleteItemRequest, context: Context
    ) -> pb.DeleteItemResponse:
        expected = request.expected_version if request.HasField("expected_version") else None
        await self.service.items.delete(current_principal(), request.id, expected_version=expected)
        return pb.DeleteItemResponse()

    async def ListRevisions(
        self, request: pb.ListRevisionsRequest, context: Context
    ) -> pb.ListRevisionsResponse:
        page = page_bounds(
            request.page, maximum=MAX_REVISIONS_PAGE_SIZE, default=DEFAULT_REVISIONS_PAGE_SIZE
        )
        rows, total = await self.service.items.revisions(current_principal(), request.item_id, page)
        return pb.ListRevisionsResponse(
            revisions=[revision_message(r) for r in rows], page=common_pb2.PageInfo(total=total)
        )

    async def GetRevision(self, request: pb.GetRevisionRequest, context: Context) -> pb.Revision:
        row = await self.service.items.revision(
            current_principal(), request.item_id, request.version
        )
        return revision_message(row)

    async def RestoreRevision(
        self, request: pb.RestoreRevisionRequest, context: Context
    ) -> pb.Item:
        row = await self.service.items.restore(
            current_principal(),
            request.item_id,
            request.version,
            expected_version=(
                request.expected_version if request.HasField("expected_version") else None
            ),
        )
        return item_message(row)

    async def PublishedMedia(
        self, request: pb.PublishedMediaRequest, context: Context
    ) -> pb.PublishedMediaResponse:
        found = await self.service.items.published_media(request.ids)
        # The answer changes with the items that use these files (their writes carry the tags).
        upcoming = self.service.cache.upcoming.tags()  # a scheduled change may publish one
        context.set_trailing_metadata(tags_metadata([*media_tags(set(request.ids)), *upcoming]))
        return pb.PublishedMediaResponse(ids=sorted(found))
