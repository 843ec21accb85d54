"""Collection use cases: create, read, change and delete content types."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
from heron_common.cache.tags import PUBLIC_MEDIA_TAG
from heron_common.errors import (
    AlreadyExists,
    Conflict,
    ErrorDetail,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from heron_common.ids import new_id, now_ms
from heron_common.jsondoc import check_json_document, check_text
from heron_common.outbox import actor_of
from heron_common.security.authz import principal_var
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_content import repository as repo
from heron_content.caching import (
    ALL_COLLECTIONS,
    ALL_ITEMS,
    collection_tags,
    item_key,
    listing_tags,
)
from heron_content.indexes import sync_indexes
from heron_content.media_refs import used_media
from heron_content.outbox import emit_collection_changed
from heron_content.repository import Collection
from heron_content.schema import (
    Conformed,
    conform,
    normalize_schema,
    referenced_collections,
    touched_fields,
    unique_fields,
    unique_values,
)
from heron_content.search import search_text
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
        source: str = "",
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
            managed=managed or bool(source),
            created_at=now,
            updated_at=now,
            source=source,
        )
        try:
            async with self._unit_of_work() as work:
                if await repo.get_collection(work.conn, name) is not None:
                    raise repo.NameTaken()
                await _check_targets(work.conn, row.schema, name)
                await repo.insert_collection(work.conn, row)
                await sync_indexes(work.conn, row.id, None, row.schema)
                work.record("collection.created", row.id, collection_tags(row))
                await emit_collection_changed(work, _actor(), row, "created")
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
        confirm: bool = False,
        writer: str = "",
        source: str | None = None,
    ) -> Collection:
        """Change a collection. A schema change that would remove or convert data some items
        hold is refused (409, with how many items and which fields) unless `confirm`; with it,
        those items are fitted to the new schema, each as a new version and revision (by
        `writer`). Either way no item is left that the new schema refuses."""
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
        refitted: Sequence[str] = ()
        async with self._unit_of_work() as work:
            row = await collection_in(work.conn, key, "update" if "schema" in values else None)
            if source is None:
                _check_not_from_file(row)
            else:  # a sync of the files: the collection is (or no longer is) one of theirs
                values["source"] = source
                values["managed"] = bool(source) or (row.managed and not row.source)
            values = {k: v for k, v in values.items() if getattr(row, k) != v}
            if "schema" in values:
                await _check_targets(work.conn, values["schema"], row.name)
                refitted = await self._fit_items(work.conn, row, values["schema"], confirm, writer)
                await _index_unique_fields(work.conn, row, values["schema"])
                await sync_indexes(work.conn, row.id, row.schema, values["schema"])
            if values:
                values["version"] = row.version + 1
                values["updated_at"] = now_ms()
                await repo.update_collection(work.conn, row.id, values)
                tags = collection_tags(row)
                if refitted:
                    tags += [*listing_tags(row), ALL_ITEMS, *map(item_key, refitted)]
                    tags.append(PUBLIC_MEDIA_TAG)  # a file its items no longer use may be one
                work.record("collection.updated", row.id, tags)
                await emit_collection_changed(
                    work, _actor(), dataclasses.replace(row, **values), "updated"
                )
        logger.info(
            "collection updated",
            extra={
                "collection": row.name,
                "fields": sorted(values),
                "items_refitted": len(refitted),
            },
        )
        return repo.changed(row, values)

    async def _fit_items(
        self,
        conn: AsyncConnection,
        row: Collection,
        schema: dict[str, Any],
        confirm: bool,
        writer: str,
    ) -> Sequence[str]:
        """Fit the collection's items to its new schema; the ids of those rewritten."""
        touched = touched_fields(row.schema, schema)
        if not touched:
            return []
        current = {item.id: item for item in await repo.collection_items(conn, row.id)}
        stored = {item_id: orjson.loads(item.data) for item_id, item in current.items()}
        fitted = {i: conform(row.schema, schema, data) for i, data in stored.items()}
        # A value that becomes a reference must point at an item that exists (one query).
        missing = await _missing_targets(conn, fitted)
        for item_id, fields in missing.items():
            fitted[item_id] = conform(row.schema, schema, stored[item_id], drop=fields)
        unfixable: Counter[str] = Counter(n for f in fitted.values() for n in f.unfixable)
        if unfixable:
            raise Conflict(
                "items have no value for a field this change makes required; give the field "
                "a default or fill it in those items first",
                [
                    ErrorDetail(f"schema.properties.{name}", f"{count} item(s) have no value")
                    for name, count in sorted(unfixable.items())
                ],
            )
        lost: Counter[str] = Counter(n for f in fitted.values() for n in f.lost)
        converted: Counter[str] = Counter(n for f in fitted.values() for n in f.converted)
        affected = sum(1 for f in fitted.values() if f.lost or f.converted)
        if affected and not confirm:
            raise Conflict(
                f"this change would remove or convert data in {affected} item(s); "
                'send "confirm": true to apply it (their revisions keep the old values)',
                [
                    ErrorDetail(f"schema.properties.{name}", f"{count} item(s) would lose it")
                    for name, count in sorted(lost.items())
                ]
                + [
                    ErrorDetail(f"schema.properties.{name}", f"{count} item(s) would be converted")
                    for name, count in sorted(converted.items())
                ],
            )
        changed = {i: f for i, f in fitted.items() if f.data != stored[i]}
        if not changed:
            return []
        now = now_ms()
        rows, revisions = [], []
        for item_id, fit in changed.items():
            item = repo.changed(
                current[item_id],
                {
                    "data": orjson.dumps(fit.data).decode(),
                    "version": current[item_id].version + 1,
                    "updated_at": now,
                },
            )
            rows.append(
                {
                    "item_id": item_id,
                    "data": fit.data,
                    "version": item.version,
                    "search_text": search_text(schema, item.title, fit.data),
                }
            )
            revision = repo.revision_of(item, "migrated", writer or item.author_id)
            revisions.append((revision, fit.data))
            await _refit_unique_values(conn, row, schema, item_id, stored[item_id], fit.data)
            used = used_media(schema, fit.data, item.data)
            await repo.set_media(conn, item_id, used, await repo.media_of(conn, item_id))
        await repo.rewrite_items(conn, rows, now)
        await repo.insert_revisions(conn, revisions, self.revisions_kept)
        return list(changed)

    async def delete(self, key: str) -> None:
        try:
            async with self._unit_of_work() as work:
                row = await collection_in(work.conn, key)
                _check_not_from_file(row)
                count = await repo.count_items(work.conn, row.id)
                if count:
                    raise _not_empty(row.name, count)
                await repo.delete_collection(work.conn, row.id)
                await sync_indexes(work.conn, row.id, row.schema, None)
                work.record(
                    "collection.deleted", row.id, [*collection_tags(row), *listing_tags(row)]
                )
                await emit_collection_changed(work, _actor(), row, "deleted")
        except repo.CollectionInUse:
            raise _not_empty(row.name, 1) from None
        logger.info("collection deleted", extra={"collection": row.name})


def _actor() -> dict[str, str]:
    """Who changes the collection: the call's principal (None: the service, e.g. its files)."""
    return actor_of(principal_var.get())


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


async def _missing_targets(
    conn: AsyncConnection, fitted: dict[str, Conformed]
) -> dict[str, set[str]]:
    """Per item, the fields whose references (as the new schema reads them) point at no item
    of an allowed collection."""
    wanted = {r.item_id for f in fitted.values() for r in f.references}
    if not wanted:
        return {}
    found = await repo.item_refs(conn, wanted)
    missing: dict[str, set[str]] = {}
    for item_id, fit in fitted.items():
        for ref in fit.references:
            target = found.get(ref.item_id)
            if target is None or target.collection_name not in ref.collections:
                missing.setdefault(item_id, set()).add(ref.path.split(".")[1])
    return missing


async def _refit_unique_values(
    conn: AsyncConnection,
    row: Collection,
    schema: dict[str, Any],
    item_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    """A refitted item's values of fields unique before and after the change follow it
    (fields that start or stop being unique are _index_unique_fields's)."""
    kept = set(unique_fields(row.schema)) & set(unique_fields(schema))
    moved = sorted(n for n in kept if before.get(n) != after.get(n))
    if not moved:
        return
    await repo.release_unique_values(conn, item_id, moved)
    claims = {n: v for n, v in unique_values(schema, after).items() if n in moved}
    try:
        await repo.claim_unique_values(conn, row.id, item_id, claims)
    except repo.UniqueValueTaken as exc:
        raise Conflict(
            "the change would give two items the same value of a unique field",
            [ErrorDetail(f"schema.properties.{exc.field}", "converted values collide")],
        ) from None


def _check_not_from_file(row: Collection) -> None:
    if row.source:
        raise PermissionDenied(
            f"collection {row.name!r} is defined by the file {row.source!r}: change the file "
            "(it is applied when the content service starts)",
            [ErrorDetail("collection", f"managed by {row.source}")],
        )


def _not_empty(name: str, count: int) -> Conflict:
    return Conflict(f"collection {name!r} still has item(s) ({count}+); delete them first")
