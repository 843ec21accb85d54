"""The content service's use of the cache tiers: what is cached under which key and tags, and
what each write invalidates (after its commit).

Cached values are the stored rows, the same for every caller; who may see them is decided
after the read (heron_content.policy), so one entry serves every principal. Listings are keyed
by everything that shapes them, including the author whose drafts a caller may also see.
The gateway's page cache (namespace "gateway") is invalidated with the same tags.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from heron_common.cache import TieredCache
from heron_common.cache.types import NOT_FOUND, Loaded, NotFoundMarker
from heron_common.context import fresh_var
from heron_common.errors import NotFound
from heron_common.events import Event

from heron_content.repository import Collection, Item

ALL_COLLECTIONS = "collections"
ALL_ITEMS = "items:all"


def item_key(item_id: str) -> str:
    return f"item:{item_id}"


# Tag families: `collection:<id|name>` and `collections` label collection records,
# `item:<id>` one item, `items:<collection id|name>` and `items:all` listings of items.
def collection_tags(row: Collection) -> list[str]:
    return [ALL_COLLECTIONS, f"collection:{row.id}", f"collection:{row.name}"]


def listing_tags(collection: Collection | None) -> list[str]:
    if collection is None:
        return [ALL_ITEMS]
    return [f"items:{collection.id}", f"items:{collection.name}"]


def item_tags(row: Item) -> list[str]:
    """What a change of this item makes stale: itself and the listings it appears in."""
    return [
        item_key(row.id),
        f"items:{row.collection_id}",
        f"items:{row.collection_name}",
        ALL_ITEMS,
    ]


UNTIL_TAG = "until:"
"""A tag of a different kind: `until:<epoch ms>` says the answer may change at that moment
without a write (a scheduled change), so a cache keeps it no longer (heron_gateway)."""


class Upcoming:
    """The earliest scheduled change still to be made, as far as this process knows: read
    answers carry it as an `until:` tag, so no cache outlives it, even where no invalidation
    can reach (a gateway without Redis)."""

    def __init__(self) -> None:
        self.moment: int | None = None

    def note(self, moment: int | None) -> None:
        """A schedule was set for `moment`."""
        if moment is not None and (self.moment is None or moment < self.moment):
            self.moment = moment

    def tags(self) -> list[str]:
        return [f"{UNTIL_TAG}{self.moment}"] if self.moment is not None else []


class ContentCache:
    def __init__(
        self, rows: TieredCache[Any] | None = None, pages: TieredCache[Any] | None = None
    ) -> None:
        self.rows = rows
        self.pages = pages
        self.upcoming = Upcoming()

    async def read(
        self,
        key: str,
        load: Callable[[], Awaitable[Any]],
        tags_of: Callable[[Any], list[str]],
        missing: list[str],
        not_found: NotFound,
    ) -> Any:
        """The value under `key`, loaded by `load` on a miss; None from `load` means not found,
        cached briefly under the `missing` tags, and raised as `not_found`. A caller that asked
        for a fresh answer (heron_common.context.fresh_var) gets `load`'s, cache untouched."""
        if self.rows is None or fresh_var.get():
            value = await load()
            if value is None:
                raise not_found
            return value

        async def loader() -> Loaded[Any] | NotFoundMarker:
            value = await load()
            if value is None:
                return Loaded(NOT_FOUND, tags=missing)
            return Loaded(value, tags=tags_of(value))

        result = await self.rows.get_or_load(key, loader)
        if not result.found:
            raise not_found
        return result.value

    async def on_committed(self, events: Sequence[Event]) -> None:
        """The subscriber of the service's committed writes: drop what they made stale."""
        await self.changed({tag: None for event in events for tag in event.tags})

    async def changed(self, tags: Iterable[str]) -> None:
        """Call after commit: drop what the write made stale, here and in the gateway."""
        tags = list(tags)
        if self.rows is not None:
            await self.rows.invalidate(tags=tags)
        if self.pages is not None:
            await self.pages.invalidate(tags=tags)
