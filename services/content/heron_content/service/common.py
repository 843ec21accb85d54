"""What both content aggregates share: the collection key rule, the not-found errors (in
SonicJS's words) and the unit of work."""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager
from typing import Literal

from heron_common.db import Database
from heron_common.errors import ErrorDetail, InvalidArgument, NotFound
from heron_common.events import EventBus, UnitOfWork, unit_of_work
from heron_common.ids import is_id
from heron_common.limits import MAX_COLLECTION_NAME_LENGTH
from heron_common.outbox import Outbox
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_content import repository as repo
from heron_content.caching import ALL_COLLECTIONS, ContentCache
from heron_content.repository import Collection

COLLECTION_NAME = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_COLLECTION_NAME_LENGTH - 1}}}")

# SonicJS's messages, which its clients compare against; the key is in the details.
COLLECTION_NOT_FOUND = "Collection not found"
CONTENT_NOT_FOUND = "Content not found"


class UseCases:
    """A content aggregate's use cases: the database, the cache, the service's events, how
    many revisions each item keeps, and the outbox its after-events go to (None: none)."""

    def __init__(
        self,
        db: Database,
        cache: ContentCache,
        events: EventBus,
        revisions_kept: int = 50,
        outbox: Outbox | None = None,
    ) -> None:
        self.db = db
        self.cache = cache
        self.events = events
        self.revisions_kept = revisions_kept
        self.outbox = outbox

    def _unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(self.db, self.events, self.outbox)


def invalid(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {message}", [ErrorDetail(field, message)])


def is_collection_key(key: str) -> bool:
    return bool(COLLECTION_NAME.fullmatch(key)) or is_id(key)


async def collection_in(
    conn: AsyncConnection, key: str, lock: Literal["share", "update"] | None = None
) -> Collection:
    """The collection named or identified by `key`, read in the transaction of `conn` (and
    locked in it, with `lock`: see repository.get_collection)."""
    row = await repo.get_collection(conn, key, lock) if is_collection_key(key) else None
    if row is None:
        raise collection_not_found(key)
    return row


def shown(key: str) -> str:
    """A caller-supplied key as quoted in a message: bounded, so errors stay small."""
    return repr(key if len(key) <= 80 else key[:77] + "...")


def collection_not_found(key: str) -> NotFound:
    """Until a collection is made under that name: the answer is cached as long as that."""
    return NotFound(
        COLLECTION_NOT_FOUND,
        [ErrorDetail("collection", f"no collection {shown(key)}")],
        cache_tags=(ALL_COLLECTIONS,),
    )


def item_not_found(item_id: str) -> NotFound:
    return NotFound(CONTENT_NOT_FOUND, [ErrorDetail("id", f"no item {shown(item_id)}")])
