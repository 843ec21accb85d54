"""Content queries (SQLAlchemy Core): no policy, no validation, only SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_content.models import collections, items

# Item data leaves the database as JSON text and travels on as bytes: services never parse it
# on reads.
_ITEM_COLUMNS = (
    *(c for c in items.c if c.name != "data"),
    cast(items.c.data, Text).label("data"),
    collections.c.name.label("collection_name"),
)
_ITEMS_WITH_COLLECTION = items.join(collections, items.c.collection_id == collections.c.id)

# Hot statements are built once; SQLAlchemy then reuses their compiled form on every call.
_COLLECTION_BY_KEY = select(collections).where(
    or_(collections.c.id == bindparam("key"), collections.c.name == bindparam("key"))
)
_ITEM_BY_ID = (
    select(*_ITEM_COLUMNS).select_from(_ITEMS_WITH_COLLECTION).where(items.c.id == bindparam("id"))
)
_ITEM_BY_IDEMPOTENCY_KEY = (
    select(*_ITEM_COLUMNS)
    .select_from(_ITEMS_WITH_COLLECTION)
    .where(items.c.idempotency_key == bindparam("key"))
)


async def insert_collection(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(collections.insert().values(**values))


async def get_collection(conn: AsyncConnection, key: str) -> RowMapping | None:
    """A collection by id or by name."""
    return (await conn.execute(_COLLECTION_BY_KEY, {"key": key})).mappings().first()


async def list_collections(conn: AsyncConnection) -> Sequence[RowMapping]:
    # In the order they were made, as SonicJS lists them (its clients take the first as the
    # default); the name breaks ties.
    query = select(collections).order_by(collections.c.created_at, collections.c.name)
    return (await conn.execute(query)).mappings().all()


async def update_collection(conn: AsyncConnection, id_: str, values: Mapping[str, Any]) -> None:
    await conn.execute(collections.update().where(collections.c.id == id_).values(**values))


async def delete_collection(conn: AsyncConnection, id_: str) -> None:
    await conn.execute(collections.delete().where(collections.c.id == id_))


async def count_items(conn: AsyncConnection, collection_id: str) -> int:
    query = select(func.count()).select_from(items).where(items.c.collection_id == collection_id)
    return int((await conn.execute(query)).scalar_one())


async def insert_item(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(items.insert().values(**values))


async def get_item(conn: AsyncConnection, id_: str) -> RowMapping | None:
    return (await conn.execute(_ITEM_BY_ID, {"id": id_})).mappings().first()


async def get_item_by_idempotency_key(conn: AsyncConnection, key: str) -> RowMapping | None:
    return (await conn.execute(_ITEM_BY_IDEMPOTENCY_KEY, {"key": key})).mappings().first()


async def list_items(
    conn: AsyncConnection,
    *,
    collection_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
    drafts_of: str | None = None,
) -> tuple[Sequence[RowMapping], int]:
    """A page of items, newest first, with the total count of matching items.

    Two statements rather than `count(*) over ()`: the window would make the database read and
    sort every matching row for each page, where the page alone walks the index.
    """
    conditions = []
    if collection_id is not None:
        conditions.append(items.c.collection_id == collection_id)
    if status:
        conditions.append(items.c.status == status)
    if drafts_of is not None:
        # Published items, plus the ones this author wrote.
        conditions.append(or_(items.c.status == "published", items.c.author_id == drafts_of))
    query = (
        select(*_ITEM_COLUMNS)
        .select_from(_ITEMS_WITH_COLLECTION)
        .where(*conditions)
        .order_by(items.c.created_at.desc(), items.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = (await conn.execute(query)).mappings().all()
    if offset == 0 and len(rows) < limit:
        return rows, len(rows)
    count = select(func.count()).select_from(items).where(*conditions)
    return rows, int((await conn.execute(count)).scalar_one())


async def taken_slugs(conn: AsyncConnection, collection_id: str, candidates: list[str]) -> set[str]:
    """Which of `candidates` are already used in the collection (one index lookup each)."""
    query = select(items.c.slug).where(
        items.c.collection_id == collection_id, items.c.slug.in_(candidates)
    )
    return set((await conn.execute(query)).scalars().all())


async def update_item(
    conn: AsyncConnection, id_: str, values: Mapping[str, Any], expected_version: int | None
) -> int:
    """Apply `values`; with `expected_version`, only if the item is still at it. Rows changed."""
    query = items.update().where(items.c.id == id_)
    if expected_version is not None:
        query = query.where(items.c.version == expected_version)
    result = await conn.execute(query.values(**values))
    return result.rowcount


async def delete_item(conn: AsyncConnection, id_: str) -> int:
    result = await conn.execute(items.delete().where(items.c.id == id_))
    return result.rowcount
