"""The demo collection seeded on first run, so a newcomer has something to read at once."""

from __future__ import annotations

import logging

from heron_content.service import ContentService

logger = logging.getLogger("heron.content.seed")

DEMO_COLLECTION = "blog_posts"
DEMO_SCHEMA = {
    "type": "object",
    "properties": {
        "excerpt": {"type": "textarea", "title": "Excerpt", "maxLength": 500},
        "body": {"type": "richtext", "title": "Body", "required": True},
        "tags": {"type": "array", "title": "Tags"},
        "reading_minutes": {"type": "integer", "title": "Reading time", "minimum": 0},
        "featured": {"type": "boolean", "title": "Featured"},
    },
}
DEMO_ITEMS = [
    {
        "title": "Welcome to Heron",
        "data": {
            "excerpt": "A headless CMS you can run with one command.",
            "body": "<p>Heron serves your content over a REST API.</p>",
            "tags": ["heron", "intro"],
            "reading_minutes": 1,
            "featured": True,
        },
        "status": "published",
    },
    {
        "title": "Collections and items",
        "data": {
            "excerpt": "How content is shaped in Heron.",
            "body": "<p>A collection declares fields; items hold the values.</p>",
            "tags": ["guide"],
            "reading_minutes": 3,
            "featured": False,
        },
        "status": "published",
    },
    {
        "title": "Reading content over the API",
        "data": {
            "excerpt": "Lists, single items, limits and offsets.",
            "body": "<p>GET /api/collections/blog_posts/content lists this collection.</p>",
            "tags": ["guide", "api"],
            "reading_minutes": 2,
        },
        "status": "published",
    },
    {
        "title": "An unfinished draft",
        "data": {"body": "<p>Drafts are for editors.</p>"},
        "status": "draft",
    },
]


async def seed_demo(service: ContentService) -> bool:
    """Create the demo collection and its items in a store with no collection at all.

    The service calls it only for a store its migrations created just now.
    """
    if await service.list_collections():
        return False
    await service.create_collection(
        name=DEMO_COLLECTION,
        display_name="Blog Posts",
        description="Demo collection created on first run.",
        schema=DEMO_SCHEMA,
        managed=True,
    )
    for item in DEMO_ITEMS:
        await service.create_item(
            collection=DEMO_COLLECTION,
            title=str(item["title"]),
            data=item["data"],
            status=str(item["status"]),
            author_id="system",
            idempotency_key=f"seed:{DEMO_COLLECTION}:{item['title']}",
        )
    logger.info("seeded demo content", extra={"collection": DEMO_COLLECTION})
    return True
