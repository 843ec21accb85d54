"""The seo plugin: a public `sitemap.xml` over the published items of chosen collections, and
meta fields filled in from the item when an editor leaves them empty.

Settings: `base_url` (the site's address, e.g. `https://example.com`), `collections`: `{"name",
"path", "changefreq", "priority"}` each, `path` a template such as `/blog/{slug}` (`{slug}`,
`{id}`), and `meta`: `{"collection", "title_field", "description_field", "source_field"}` each,
to fill `data.<title_field>` from the title (at most 60 characters) and
`data.<description_field>` from `data.<source_field>`, without its markup (at most 160).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from cms.common.v1 import common_pb2
from cms.content.v1 import content_pb2
from heron_common.rpc.client import call

from heron_plugins.manifest import Hook, Manifest, PluginContext, PluginRequest, PluginResponse

MAX_URLS = 50_000  # the sitemap protocol's limit per file
PAGE = 200
TITLE_LENGTH, DESCRIPTION_LENGTH = 60, 160
TAG = re.compile(r"<[^>]*>")


class _State:
    context: PluginContext | None = None


_state = _State()


async def start(context: PluginContext) -> None:
    _state.context = context


async def stop() -> None:
    _state.context = None


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def plain(text: str) -> str:
    """Text without markup or entities."""
    return html.unescape(TAG.sub(" ", text))


async def fill_meta(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Fill the configured meta fields the item leaves empty (on create, and on an update
    that changes its data)."""
    if _state.context is None:
        return None
    item = payload["item"]
    collection = item.get("collection") or (payload.get("current") or {}).get("collection")
    data = item.get("data")
    if not isinstance(data, dict):
        return None
    rules = [
        r
        for r in (await _state.context.settings()).get("meta", [])
        if r.get("collection") == collection
    ]
    for rule in rules:
        title_field, description_field = rule.get("title_field"), rule.get("description_field")
        title = item.get("title") or ""
        if title_field and not data.get(title_field) and title:
            data[title_field] = _shorten(title, TITLE_LENGTH)
        source = data.get(rule.get("source_field") or "")
        if description_field and not data.get(description_field) and isinstance(source, str):
            data[description_field] = _shorten(plain(source), DESCRIPTION_LENGTH)
    return payload


async def _published(name: str) -> list[content_pb2.Item]:
    assert _state.context is not None and _state.context.content is not None
    found: list[content_pb2.Item] = []
    cursor = ""
    while len(found) < MAX_URLS:
        request = content_pb2.ListItemsRequest(
            collection=name,
            status="published",
            page=common_pb2.PageRequest(limit=PAGE, cursor=cursor),
        )
        # No credentials: an anonymous reader's view (published items only).
        answer: content_pb2.ListItemsResponse = await call(
            _state.context.content.ListItems, request, timeout=10
        )
        found.extend(answer.items)
        cursor = answer.page.next_cursor
        if not cursor or not answer.items:
            break
    return found[:MAX_URLS]


async def sitemap(request: PluginRequest) -> PluginResponse:
    if _state.context is None:
        return PluginResponse(503, b'{"error": "The seo plugin is starting; retry shortly."}')
    settings = await _state.context.settings()
    base = str(settings.get("base_url", "")).rstrip("/")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    count = 0
    for entry in settings.get("collections", []):
        for item in await _published(entry["name"]):
            if count >= MAX_URLS:
                break
            path = entry.get("path", "/{slug}").replace("{slug}", item.slug)
            path = path.replace("{id}", item.id)
            moment = datetime.fromtimestamp(item.updated_at / 1000, UTC)
            lines.append(
                f"  <url><loc>{escape(base + path)}</loc>"
                f"<lastmod>{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}</lastmod>"
                + (
                    f"<changefreq>{escape(entry['changefreq'])}</changefreq>"
                    if entry.get("changefreq")
                    else ""
                )
                + (f"<priority>{entry['priority']:.1f}</priority>" if "priority" in entry else "")
                + "</url>"
            )
            count += 1
    lines.append("</urlset>")
    return PluginResponse(
        200,
        ("\n".join(lines) + "\n").encode(),
        content_type="application/xml; charset=utf-8",
        headers={"cache-control": "public, max-age=300"},
    )


_NAME = {"type": "string", "minLength": 1, "maxLength": 64}

manifest = Manifest(
    name="seo",
    version="1.0.0",
    description="A public sitemap.xml of published items, and meta fields filled in.",
    author="Heron",
    start=start,
    stop=stop,
    hooks=(
        Hook(event="content:beforeCreate", priority=50, handler=fill_meta),
        Hook(event="content:beforeUpdate", priority=50, handler=fill_meta),
    ),
    routes=({"method": "GET", "path": "/sitemap.xml", "permission": "public", "handler": sitemap},),  # type: ignore[arg-type]
    settings_schema={
        "type": "object",
        "properties": {
            "base_url": {
                "type": "string",
                "pattern": "^https?://[^/]+",
                "maxLength": 300,
                "default": "http://127.0.0.1:8000",
                "description": "The site's address: the sitemap's URLs start with it.",
            },
            "collections": {
                "type": "array",
                "maxItems": 50,
                "default": [],
                "items": {
                    "type": "object",
                    "properties": {
                        "name": _NAME,
                        "path": {"type": "string", "pattern": "^/", "maxLength": 200},
                        "changefreq": {
                            "type": "string",
                            "enum": [
                                "always",
                                "hourly",
                                "daily",
                                "weekly",
                                "monthly",
                                "yearly",
                                "never",
                            ],
                        },
                        "priority": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["name", "path"],
                    "additionalProperties": False,
                },
            },
            "meta": {
                "type": "array",
                "maxItems": 50,
                "default": [],
                "items": {
                    "type": "object",
                    "properties": {
                        "collection": _NAME,
                        "title_field": _NAME,
                        "description_field": _NAME,
                        "source_field": _NAME,
                    },
                    "required": ["collection"],
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
)
