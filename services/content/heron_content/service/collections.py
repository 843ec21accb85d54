"""Collection use cases: create, read, change and delete content types."""

from __future__ import annotations

import logging
from typing import Any

from heron_common.errors import AlreadyExists, Conflict, NotFound
from heron_common.ids import new_id, now_ms
from heron_common.jsondoc import check_json_document, check_text

from heron_content import repository as repo
from heron_content.caching import ALL_COLLECTIONS, collection_tags, listing_tags
from heron_content.repository import Collection
from heron_content.schema import normalize_schema
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


def _not_empty(name: str, count: int) -> Conflict:
    return Conflict(f"collection {name!r} still has item(s) ({count}+); delete them first")
