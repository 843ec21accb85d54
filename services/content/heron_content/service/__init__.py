"""Content use cases, one class per aggregate: `Collections` and `Items`, on one database and
one cache, whose writes' events reach the cache after their commit."""

from __future__ import annotations

from heron_common.db import Database
from heron_common.events import EventBus
from heron_common.outbox import Outbox
from heron_common.plugin_hooks import PluginHooks

from heron_content.caching import ContentCache
from heron_content.media import MediaFiles
from heron_content.service.collections import Collections
from heron_content.service.common import COLLECTION_NOT_FOUND, CONTENT_NOT_FOUND
from heron_content.service.items import Items

__all__ = ["COLLECTION_NOT_FOUND", "CONTENT_NOT_FOUND", "ContentService"]


class ContentService:
    def __init__(
        self,
        db: Database,
        cache: ContentCache | None = None,
        revisions_kept: int = 50,
        search_window: int = 1000,
        media: MediaFiles | None = None,
        hooks: PluginHooks | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.cache = cache or ContentCache()
        # Every write's events, after its commit: the cache drops what they made stale.
        self.events = EventBus()
        self.events.subscribe(self.cache.on_committed)
        self.collections = Collections(db, self.cache, self.events, revisions_kept, outbox)
        self.items = Items(
            db,
            self.cache,
            self.events,
            self.collections,
            revisions_kept,
            search_window,
            media,
            hooks,
            outbox,
        )
