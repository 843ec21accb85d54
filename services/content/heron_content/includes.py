"""`include=`: a listing's reference fields expanded into the items they point to.

`include=data.author,data.tags` replaces each id those fields hold with the item itself (in the
API's item shape); `data.author.org` goes one level further, into the `org` reference of the
included authors, at most `MAX_DEPTH` levels. The items of one level are read in one query
whatever the page size (a page of 50 with two included fields costs one more round trip, a
second level one more). An item the reader may not see (a draft of someone else's, for an
anonymous reader) stays its id, as does an id that points nowhere.

A media field may end a path (`data.cover`, `data.author.photo`): its ids become the files'
metadata and URL (`expand_media`), asked of the media service in one call per page, after the
page itself was read (or taken from the cache): a file's alt text or deletion shows at once,
whichever process changed it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from heron_common.cache.tags import media_tags
from heron_common.errors import ErrorDetail, InvalidArgument
from heron_common.security.permissions import Principal
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_content import policy
from heron_content import repository as repo
from heron_content.caching import item_key
from heron_content.repository import Item

MAX_DEPTH = 3


def _invalid(where: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{where}: {message}", [ErrorDetail(where, message)])


@dataclass
class Node:
    """What to expand in a level's items: reference field name -> what to expand in theirs."""

    children: dict[str, Node] = field(default_factory=dict)
    media: bool = False
    """A media field: its files come from the media service (`expand_media`)."""


def plan(
    paths: Sequence[str], schema: dict[str, Any] | None, schemas: Mapping[str, dict[str, Any]]
) -> Node:
    """The include paths as one tree, each hop checked to be a reference field."""
    root = Node()
    for path in paths:
        where = f"include.{path}"
        head, _, rest = path.partition(".")
        if head != "data" or not rest:
            raise _invalid(where, "include names reference fields, e.g. data.author")
        if schema is None:
            raise _invalid(
                where, "data fields differ per collection: query /api/collections/{name}/content"
            )
        hops = rest.split(".")
        if len(hops) > MAX_DEPTH:
            raise _invalid(where, f"at most {MAX_DEPTH} levels of includes")
        node, level = root, [schema]
        for n, hop in enumerate(hops):
            definitions = [s["properties"][hop] for s in level if hop in s.get("properties", {})]
            if not definitions:
                raise _invalid(where, f"no field {hop!r} to include")
            if all(d["type"] == "media" for d in definitions):
                if n != len(hops) - 1:
                    raise _invalid(where, f"{hop!r} is a media field: nothing to include in it")
                node.children.setdefault(hop, Node(media=True))
                break
            if any(d["type"] != "reference" for d in definitions):
                raise _invalid(where, f"{hop!r} is not a reference or media field")
            node = node.children.setdefault(hop, Node())
            names = {n for d in definitions for n in d.get("collections", ())}
            level = [schemas[n] for n in sorted(names) if n in schemas]
    return root


async def expand(
    conn: AsyncConnection, principal: Principal | None, rows: list[Item], tree: Node
) -> tuple[list[Item], list[str]]:
    """`rows` with the tree's references expanded, and the cache tags of every item looked
    up (a change of an included item changes the page)."""
    if not tree.children or not rows:
        return rows, []
    documents = [orjson.loads(row.data) for row in rows]
    pending: list[tuple[dict[str, Any], Node]] = [(doc, tree) for doc in documents]
    tags: list[str] = []
    for _ in range(MAX_DEPTH):
        wanted = {
            value
            for doc, node in pending
            for name, child in node.children.items()
            if not child.media
            for value in _ids(doc.get(name))
        }
        if not wanted:
            break
        found = await repo.items_by_ids(conn, wanted)
        tags += [item_key(i) for i in sorted(wanted)]
        following: list[tuple[dict[str, Any], Node]] = []
        for doc, node in pending:
            for name, child in node.children.items():
                if name not in doc or child.media:
                    continue
                shown, more = _shown(doc[name], found, principal, child)
                doc[name] = shown
                following += more
        pending = following
    expanded = [
        repo.changed(row, {"data": orjson.dumps(doc).decode()})
        for row, doc in zip(rows, documents, strict=True)
    ]
    return expanded, tags


def has_media(tree: Node) -> bool:
    return any(child.media or has_media(child) for child in tree.children.values())


async def expand_media(
    rows: list[Item],
    tree: Node,
    find: Callable[[Iterable[str]], Awaitable[Mapping[str, dict[str, Any]]]],
) -> tuple[list[Item], list[str]]:
    """`rows` (references already expanded) with the ids of the tree's media fields replaced by
    the files `find` returns (those the reader may see; the others stay ids), and the tags of
    every file asked for."""
    documents = [orjson.loads(row.data) for row in rows]
    slots: list[tuple[dict[str, Any], str]] = []

    def visit(doc: dict[str, Any], node: Node) -> None:
        for name, child in node.children.items():
            if name not in doc:
                continue
            if child.media:
                slots.append((doc, name))
                continue
            values = doc[name] if isinstance(doc[name], list) else [doc[name]]
            for value in values:  # an included item (an id that stayed an id has no data)
                if isinstance(value, dict) and isinstance(value.get("data"), dict):
                    visit(value["data"], child)

    for doc in documents:
        visit(doc, tree)
    wanted = {i for doc, name in slots for i in _ids(doc[name])}
    if not wanted:
        return rows, []
    found = await find(wanted)
    for doc, name in slots:
        value = doc[name]
        if isinstance(value, list):
            doc[name] = [found.get(v, v) if isinstance(v, str) else v for v in value]
        elif isinstance(value, str):
            doc[name] = found.get(value, value)
    expanded = [
        repo.changed(row, {"data": orjson.dumps(doc).decode()})
        for row, doc in zip(rows, documents, strict=True)
    ]
    return expanded, media_tags(wanted)


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _shown(
    value: Any, found: Mapping[str, Item], principal: Principal | None, node: Node
) -> tuple[Any, list[tuple[dict[str, Any], Node]]]:
    """A reference's value with the items it points to in place of their ids (those the
    reader may see), and the included items' data still to expand."""
    more: list[tuple[dict[str, Any], Node]] = []

    def one(item_id: Any) -> Any:
        target = found.get(item_id) if isinstance(item_id, str) else None
        if target is None or not policy.can_see(principal, target):
            return item_id
        shown = included(target)
        if node.children:
            more.append((shown["data"], node))
        return shown

    if isinstance(value, list):
        return [one(v) for v in value], more
    return one(value), more


def included(item: Item) -> dict[str, Any]:
    """An item as the API shows it (the gateway's item shape), inside another's data."""
    return {
        "id": item.id,
        "title": item.title,
        "slug": item.slug,
        "status": item.status,
        "collectionId": item.collection_id,
        "collection": item.collection_name,
        "data": orjson.loads(item.data),
        "author_id": item.author_id,
        "version": item.version,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "published_at": item.published_at,
        # An included item's schedule is its editors' business.
        "scheduled_publish_at": None,
        "scheduled_unpublish_at": None,
        "schedule_error": None,
    }
