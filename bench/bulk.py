"""Bulk seeding for scale runs: rows written straight into the content service's own tables.

The public API is the default; this path exists because creating an item through it gets
slower as the collection grows, so 100,000 items would take most of an hour. It uses the
service's table definitions and slug rule, and the collection is still created by the API.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from heron_common.db import create_engine
from heron_content.models import items
from heron_content.schema import normalize_schema
from heron_content.search import search_text
from heron_content.slugs import slugify

from bench.content import COLLECTION_SCHEMA, item_payload
from bench.progress import Progress

BATCH = 1000


_SCHEMA = normalize_schema(COLLECTION_SCHEMA)


def _row(n: int, collection_id: str, created_at: int, author_id: str) -> dict[str, Any]:
    payload = item_payload(n)
    return {
        "id": str(uuid.uuid4()),
        "collection_id": collection_id,
        "title": payload["title"],
        "slug": slugify(payload["title"]),  # titles end in their number: no clashes
        "data": payload["data"],
        "status": payload["status"],  # published: anonymous readers see it
        "author_id": author_id,  # as if the admin had created it through the API
        "version": 1,
        "created_at": created_at,
        "updated_at": created_at,
        "published_at": created_at,
        "idempotency_key": None,
        "search_text": search_text(_SCHEMA, payload["title"], payload["data"]),  # as a write would
    }


async def bulk_insert(
    database_url: str, collection_id: str, count: int, author_id: str
) -> list[str]:
    """Insert `count` items into the collection, by `author_id`; their ids, oldest first."""
    engine = create_engine(database_url)
    progress = Progress("seeding (bulk)", count)
    # One millisecond apart, ending now: the newest-first order is the insertion order.
    first = int(time.time() * 1000) - count
    ids: list[str] = []
    try:
        for start in range(0, count, BATCH):
            rows = [
                _row(n, collection_id, first + n, author_id)
                for n in range(start, min(count, start + BATCH))
            ]
            async with engine.begin() as conn:
                await conn.execute(items.insert(), rows)
            ids += [r["id"] for r in rows]
            progress.advance(len(rows))
    finally:
        await engine.dispose()
    return ids
