"""The content service's after-events (heron_common.outbox): what each write of an item or a
collection tells the plugins, added to the outbox in the write's own transaction.

An item's write is `content:afterCreate`, `content:afterUpdate` or `content:afterDelete`; one
that changed whether it is published is also `content:afterPublish` or
`content:afterUnpublish`. A collection's is `collection:afterChange`. The payload holds the item
as the API shows it (or the collection), and who made the change.
"""

from __future__ import annotations

from typing import Any

import orjson
from heron_common.events import UnitOfWork

from heron_content.repository import Collection, Item

AFTER_CREATE = "content:afterCreate"
AFTER_UPDATE = "content:afterUpdate"
AFTER_DELETE = "content:afterDelete"
AFTER_PUBLISH = "content:afterPublish"
AFTER_UNPUBLISH = "content:afterUnpublish"
COLLECTION_CHANGED = "collection:afterChange"


def item_summary(item: Item, data: Any = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "collection": item.collection_name,
        "title": item.title,
        "slug": item.slug,
        "status": item.status,
        "data": orjson.loads(item.data) if data is None else data,
        "version": item.version,
        "author_id": item.author_id,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "published_at": item.published_at,
    }


async def emit_item_events(
    work: UnitOfWork,
    actor: dict[str, str],
    before: Item | None,
    after: Item | None,
    data: Any = None,
) -> None:
    """The after-events of an item's write: created (`before` None), changed, or deleted
    (`after` None); `data` is the item's data when the caller holds it parsed."""
    if after is None:
        assert before is not None
        names = [AFTER_DELETE]
        subject = before
    else:
        subject = after
        names = [AFTER_CREATE if before is None else AFTER_UPDATE]
        was_published = before is not None and before.status == "published"
        if after.status == "published" and not was_published:
            names.append(AFTER_PUBLISH)
        elif was_published and after.status != "published":
            names.append(AFTER_UNPUBLISH)
    wanted = [n for n in names if work.wants(n)]
    if not wanted:
        return
    summary = item_summary(subject, data)
    for name in wanted:
        await work.emit(name, subject.id, lambda: {"item": summary, "actor": actor})


async def emit_collection_changed(
    work: UnitOfWork, actor: dict[str, str], collection: Collection, change: str
) -> None:
    """`collection:afterChange` of a collection `created`, `updated` or `deleted`."""
    if not work.wants(COLLECTION_CHANGED):
        return
    await work.emit(
        COLLECTION_CHANGED,
        collection.id,
        lambda: {
            "change": change,
            "collection": {
                "id": collection.id,
                "name": collection.name,
                "display_name": collection.display_name,
                "description": collection.description,
                "schema": collection.schema,
                "version": collection.version,
                "source": collection.source,
            },
            "actor": actor,
        },
    )
