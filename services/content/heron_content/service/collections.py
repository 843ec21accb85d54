"""Collection use cases: create, read, change and delete content types."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import orjson
from heron_common.errors import AlreadyExists, Conflict, ErrorDetail, InvalidArgument, NotFound
from heron_common.ids import new_id, now_ms
from heron_common.jsondoc import check_json_document, check_text
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_content import repository as repo
from heron_content.caching import ALL_COLLECTIONS, collection_tags, listing_tags
from heron_content.repository import Collection
from heron_content.schema import (
    normalize_schema,
    referenced_collections,
    unique_fields,
    unique_values,
)
from heron_content.service.common import (
    COLLECTION_NAME,
    UseCases,
    collection_in,
    collection_not_found,
    invalid,
    is_collection_key,
)

logger = logging.getLogger("heron.content")


class Collections(UseCases):
    async def create(
        self,
        *,
        name: str,
        display_name: str,
        description: str,
        schema: Any,
        managed: bool = False,
    ) -> Collection:
        if not COLLECTION_NAME.fullmatch(name):
            raise invalid(
                "name",
                "must start with a lowercase letter and contain only lowercase letters, "
                "digits and underscores (at most 64)",
            )
        check_text(display_name, "display_name")
        check_text(description, "description")
        check_json_document(schema, "schema")
        now = now_ms()
        row = Collection(
            id=new_id(),
            name=name,
            display_name=display_name.strip() or name,
            description=description,
            schema=normalize_schema(schema),
            managed=managed,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._unit_of_work() as work:
                if await repo.get_collection(work.conn, name) is not None:
                    raise repo.NameTaken()
                await _check_targets(work.conn, row.schema, name)
                await repo.insert_collection(work.conn, row)
                work.record("collection.created", row.id, collection_tags(row))
        except repo.NameTaken:
            raise AlreadyExists(f"a collection named {name!r} already exists") from None
        logger.info("collection created", extra={"collection": name})
        return row

    async def get(self, key: str) -> Collection:
        if not is_collection_key(key):
            raise collection_not_found(key)

        async def load() -> Collection | None:
            async with self.db.read() as conn:
                return await repo.get_collection(conn, key)

        row: Collection = await self.cache.read(
            f"collection:{key}",
            load,
            collection_tags,
            [f"collection:{key}", ALL_COLLECTIONS],
            collection_not_found(key),
        )
        return row

    async def list(self) -> list[Collection]:
        async def load() -> list[Collection]:
            async with self.db.read() as conn:
                return await repo.list_collections(conn)

        rows: list[Collection] = await self.cache.read(
            "collections:list", load, lambda _: [ALL_COLLECTIONS], [], NotFound("collections")
        )
        return rows

    async def update(
        self,
        key: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        schema: Any = None,
        schema_set: bool = False,
    ) -> Collection:
        values: dict[str, Any] = {}
        if display_name is not None:
            check_text(display_name, "display_name")
            if not display_name.strip():
                raise invalid("display_name", "must not be empty")
            values["display_name"] = display_name.strip()
        if description is not None:
            check_text(description, "description")
            values["description"] = description
        if schema_set:
            check_json_document(schema, "schema")
            values["schema"] = normalize_schema(schema)
        async with self._unit_of_work() as work:
            row = await collection_in(work.conn, key)
            if "schema" in values:
                await _check_targets(work.conn, values["schema"], row.name)
                await _index_unique_fields(work.conn, row, values["schema"])
            if values:
                values["updated_at"] = now_ms()
                await repo.update_collection(work.conn, row.id, values)
                work.record("collection.updated", row.id, collection_tags(row))
        logger.info("collection updated", extra={"collection": row.name, "fields": sorted(values)})
        return repo.changed(row, values)

    async def delete(self, key: str) -> None:
        try:
            async with self._unit_of_work() as work:
                row = await collection_in(work.conn, key)
                count = await repo.count_items(work.conn, row.id)
                if count:
                    raise _not_empty(row.name, count)
                await repo.delete_collection(work.conn, row.id)
                work.record(
                    "collection.deleted", row.id, [*collection_tags(row), *listing_tags(row)]
                )
        except repo.CollectionInUse:
            raise _not_empty(row.name, 1) from None
        logger.info("collection deleted", extra={"collection": row.name})


async def _check_targets(conn: AsyncConnection, schema: dict[str, Any], own_name: str) -> None:
    """The collections a schema's references point to exist (or are the collection itself)."""
    wanted = referenced_collections(schema) - {own_name}
    if not wanted:
        return
    missing = wanted - {c.name for c in await repo.list_collections(conn)}
    if missing:
        raise InvalidArgument(
            "the schema refers to collections that do not exist",
            [ErrorDetail("schema", f"no collection {name!r}") for name in sorted(missing)],
        )


async def _index_unique_fields(
    conn: AsyncConnection, row: Collection, schema: dict[str, Any]
) -> None:
    """A field that becomes unique has its items' values recorded, unless two items share one
    (409, with how many); a field that stops being unique forgets them."""
    before, after = set(unique_fields(row.schema)), set(unique_fields(schema))
    for name in sorted(before - after):
        await repo.release_unique_field(conn, row.id, name)
    added = sorted(after - before)
    if not added:
        return
    keys: dict[str, Counter[str]] = {name: Counter() for name in added}
    rows: list[dict[str, Any]] = []
    for item_id, text in await repo.item_data(conn, row.id):
        for name, value in unique_values(schema, orjson.loads(text)).items():
            if name not in keys:  # unique before this change: already recorded
                continue
            key = repo.value_key(value)
            keys[name][key] += 1
            rows.append(
                {"collection_id": row.id, "field": name, "value_key": key, "item_id": item_id}
            )
    shared = {name: sum(n for n in counts.values() if n > 1) for name, counts in keys.items()}
    problems = [
        ErrorDetail(f"schema.properties.{name}.unique", f"{count} items share a value")
        for name, count in shared.items()
        if count
    ]
    if problems:
        raise Conflict(
            "a field cannot become unique while items share a value of it; make them "
            "distinct first",
            problems,
        )
    await repo.insert_unique_values(conn, rows)


def _not_empty(name: str, count: int) -> Conflict:
    return Conflict(f"collection {name!r} still has item(s) ({count}+); delete them first")
