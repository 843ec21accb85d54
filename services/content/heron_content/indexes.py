"""Database indexes for the fields a collection marks `indexed: true`.

Each is an expression index on `(collection_id, <the field's value>)`, where the value is the
very expression the query compiler filters and sorts by (heron_content.query), so the planner
can match it: a filtered or sorted list on an indexed field walks the index instead of
reading the collection. They are made and dropped in the transaction of the schema change
that asks for them (`IF NOT EXISTS`/`IF EXISTS`: a retried change is harmless), and named by a
digest of the collection id and field, so no two collections' indexes collide.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Index
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, DropIndex
from sqlalchemy.sql.elements import Grouping

from heron_content.models import items
from heron_content.query import Compiler, Field, Scope, resolve

PREFIX = "ix_items_field_"


def index_name(collection_id: str, field: str) -> str:
    digest = hashlib.sha256(f"{collection_id}\n{field}".encode()).hexdigest()[:24]
    return f"{PREFIX}{digest}"


def indexed_fields(schema: dict[str, Any]) -> list[str]:
    return sorted(n for n, d in schema.get("properties", {}).items() if d.get("indexed"))


def _index(dialect: str, collection_id: str, schema: dict[str, Any], field: str) -> Index:
    compiler = Compiler(items, dialect, schema, {}, Scope(True))
    resolved = resolve(f"data.{field}", schema, {}, hops=0)
    assert isinstance(resolved, Field)
    # In parentheses: PostgreSQL takes an expression (not a column) in an index only so.
    return Index(
        index_name(collection_id, field),
        items.c.collection_id,
        Grouping(compiler.comparable(items, resolved)),
    )


async def sync_indexes(
    conn: AsyncConnection,
    collection_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Make the indexes `after` asks for and drop those only `before` did (None: no schema,
    as before a create or after a delete)."""
    old = set(indexed_fields(before)) if before else set()
    new = set(indexed_fields(after)) if after else set()
    # A field whose type changed gets its index rebuilt for the new expression.
    retyped = {
        n
        for n in old & new
        if before is not None
        and after is not None
        and before["properties"][n]["type"] != after["properties"][n]["type"]
    }
    dialect = conn.dialect.name

    for name in sorted((old - new) | retyped):
        assert before is not None
        await conn.execute(DropIndex(_index(dialect, collection_id, before, name), if_exists=True))
    for name in sorted((new - old) | retyped):
        assert after is not None
        index = _index(dialect, collection_id, after, name)
        await conn.execute(CreateIndex(index, if_not_exists=True))
