"""The demo content seeded on first run: SonicJS's default collections (`pages`, `blog_posts`,
`news`, created in that order, so `pages` is the first one listed) with SonicJS's field sets, and
a few items, so a newcomer, or a SonicJS client, has something to read and write at once.

SonicJS's schemas also declare `title` (and `status` for blog posts); in Heron both are an
item's own fields, so they are not repeated in `data`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from heron_content.service import ContentService

logger = logging.getLogger("heron.content.seed")

_CONTENT = {"type": "string", "title": "Content", "format": "richtext"}
_FEATURED_IMAGE = {"type": "string", "title": "Featured Image", "format": "media"}

DEMO_COLLECTIONS: list[dict[str, Any]] = [
    {
        "name": "pages",
        "display_name": "Pages",
        "description": "Static page content collection",
        "schema": {
            "type": "object",
            "properties": {
                "content": _CONTENT,
                "excerpt": {"type": "string", "title": "Excerpt"},
                "slug": {"type": "slug", "title": "Slug"},
                "meta_description": {"type": "string", "title": "Meta Description"},
                "featured_image": _FEATURED_IMAGE,
            },
        },
        "items": [
            {
                "title": "About",
                "data": {
                    "content": "<p>This site runs on Heron, a headless CMS.</p>",
                    "excerpt": "What this site is.",
                    "meta_description": "About this site",
                },
                "status": "published",
            },
        ],
    },
    {
        "name": "blog_posts",
        "display_name": "Blog Posts",
        "description": "Blog post content collection",
        "schema": {
            "type": "object",
            "properties": {
                "content": _CONTENT,
                "excerpt": {"type": "string", "title": "Excerpt"},
                "featured_image": _FEATURED_IMAGE,
                "tags": {"type": "array", "title": "Tags", "items": {"type": "string"}},
            },
        },
        "items": [
            {
                "title": "Welcome to Heron",
                "data": {
                    "excerpt": "A headless CMS you can run with one command.",
                    "content": "<p>Heron serves your content over a REST API.</p>",
                    "tags": ["heron", "intro"],
                },
                "status": "published",
            },
            {
                "title": "Collections and items",
                "data": {
                    "excerpt": "How content is shaped in Heron.",
                    "content": "<p>A collection declares fields; items hold the values.</p>",
                    "tags": ["guide"],
                },
                "status": "published",
            },
            {
                "title": "Reading content over the API",
                "data": {
                    "excerpt": "Lists, single items, limits and offsets.",
                    "content": "<p>GET /api/collections/blog_posts/content lists them.</p>",
                    "tags": ["guide", "api"],
                },
                "status": "published",
            },
            {
                "title": "An unfinished draft",
                "data": {"content": "<p>Drafts are for editors.</p>"},
                "status": "draft",
            },
        ],
    },
    {
        "name": "news",
        "display_name": "News",
        "description": "News article content collection",
        "schema": {
            "type": "object",
            "properties": {
                "content": _CONTENT,
                "publish_date": {"type": "string", "title": "Publish Date", "format": "date"},
                "author": {"type": "string", "title": "Author"},
                "category": {
                    "type": "string",
                    "title": "Category",
                    "enum": ["technology", "business", "general"],
                },
            },
        },
        "items": [
            {
                "title": "Heron is live",
                "data": {
                    "content": "<p>The first Heron site is up.</p>",
                    "author": "Heron",
                    "category": "technology",
                },
                "status": "published",
            },
        ],
    },
]


async def seed_demo(service: ContentService) -> bool:
    """Create the demo collections and their items in a store with no collection at all.

    The service calls it only for a store its migrations created just now.
    """
    if await service.collections.list():
        return False
    for collection in DEMO_COLLECTIONS:
        await service.collections.create(
            name=collection["name"],
            display_name=collection["display_name"],
            description=collection["description"],
            schema=collection["schema"],
            managed=True,
        )
        for item in collection["items"]:
            await service.items.create(
                None,
                collection=collection["name"],
                title=str(item["title"]),
                data=item["data"],
                status=str(item["status"]),
                author_id="system",
                idempotency_key=f"seed:{collection['name']}:{item['title']}",
            )
        # Collections are listed in the order they were made (to the millisecond).
        await asyncio.sleep(0.002)
    logger.info("seeded demo content", extra={"collections": [c["name"] for c in DEMO_COLLECTIONS]})
    return True
