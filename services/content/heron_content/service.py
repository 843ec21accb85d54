"""Content use cases: collections and items, validated, with domain errors."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
from heron_common.db import Database
from heron_common.errors import (
    AlreadyExists,
    Conflict,
    ErrorDetail,
    InvalidArgument,
    NotFound,
)
from heron_common.events import EventBus, UnitOfWork, unit_of_work
from heron_common.ids import is_id, new_id, now_ms
from heron_common.jsondoc import check_json_document, check_text
from heron_common.limits import (
    DEFAULT_PAGE_SIZE,
    ITEM_STATUSES,
    MAX_COLLECTION_NAME_LENGTH,
    MAX_PAGE_SIZE,
    MAX_TITLE_LENGTH,
)
from heron_common.security.permissions import Principal
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_content import policy
from heron_content import repository as repo
from heron_content.caching import (
    ALL_COLLECTIONS,
    ContentCache,
    collection_tags,
    item_key,
    item_tags,
    listing_tags,
)
from heron_content.schema import normalize_schema, validate_data
from heron_content.slugs import (
    is_valid_slug,
    next_free_slug,
    random_slug,
    slug_candidates,
    slugify,
)

logger = logging.getLogger("heron.content")

STATUSES = ITEM_STATUSES
COLLECTION_NAME = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_COLLECTION_NAME_LENGTH - 1}}}")
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE
MAX_LIMIT = MAX_PAGE_SIZE


# An item or collection as read from the store; item `data` is JSON text.
Item = Mapping[Any, Any]


def _invalid(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {message}", [ErrorDetail(field, message)])


def _check_title(title: str) -> str:
    check_text(title, "title")
    title = title.strip()
    if not title:
        raise _invalid("title", "is required")
    if len(title) > MAX_TITLE_LENGTH:
        raise _invalid("title", f"at most {MAX_TITLE_LENGTH} characters")
    return title


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise _invalid("status", f"must be one of {', '.join(STATUSES)}")
    return status


def _check_slug(slug: str) -> str:
    if not is_valid_slug(slug):
        suggestion = slugify(slug) or "my-item"
        raise _invalid(
            "slug", f"use lowercase letters, digits and hyphens only, e.g. {suggestion!r}"
        )
    return slug


class ContentService:
    def __init__(self, db: Database, cache: ContentCache | None = None) -> None:
        self.db = db
        self.cache = cache or ContentCache()
        # Every write's events, after its commit: the cache drops what they made stale.
        self.events = EventBus()
        self.events.subscribe(self.cache.on_committed)

    def _unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(self.db, self.events)

    # -- collections -------------------------------------------------------------------------

    async def create_collection(
        self,
        *,
        name: str,
        display_name: str,
        description: str,
        schema: Any,
        managed: bool = False,
    ) -> Item:
        if not COLLECTION_NAME.fullmatch(name):
            raise _invalid(
                "name",
                "must start with a lowercase letter and contain only lowercase letters, "
                "digits and underscores (at most 64)",
            )
        check_text(display_name, "display_name")
        check_text(description, "description")
        check_json_document(schema, "schema")
        canonical = normalize_schema(schema)
        now = now_ms()
        collection_id = new_id()
        values: dict[str, Any] = {
            "id": collection_id,
            "name": name,
            "display_name": display_name.strip() or name,
            "description": description,
            "schema": canonical,
            "managed": managed,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._unit_of_work() as work:
                if await repo.get_collection(work.conn, name) is not None:
                    raise AlreadyExists(f"a collection named {name!r} already exists")
                await repo.insert_collection(work.conn, values)
                work.record("collection.created", collection_id, collection_tags(values))
        except IntegrityError:
            raise AlreadyExists(f"a collection named {name!r} already exists") from None
        logger.info("collection created", extra={"collection": name})
        return await self.get_collection(collection_id)

    async def get_collection(self, key: str) -> Item:
        if not _is_collection_key(key):
            raise _collection_not_found(key)

        async def load() -> dict[str, Any] | None:
            async with self.db.read() as conn:
                row = await repo.get_collection(conn, key)
            return dict(row) if row is not None else None

        row: Item = await self.cache.read(
            f"collection:{key}",
            load,
            collection_tags,
            [f"collection:{key}", ALL_COLLECTIONS],
            _collection_not_found(key),
        )
        return row

    async def list_collections(self) -> list[Item]:
        async def load() -> list[dict[str, Any]]:
            async with self.db.read() as conn:
                return [dict(r) for r in await repo.list_collections(conn)]

        rows: list[Item] = await self.cache.read(
            "collections:list", load, lambda _: [ALL_COLLECTIONS], [], NotFound("collections")
        )
        return rows

    async def update_collection(
        self,
        key: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        schema: Any = None,
        schema_set: bool = False,
    ) -> Item:
        values: dict[str, Any] = {}
        if display_name is not None:
            check_text(display_name, "display_name")
            if not display_name.strip():
                raise _invalid("display_name", "must not be empty")
            values["display_name"] = display_name.strip()
        if description is not None:
            check_text(description, "description")
            values["description"] = description
        if schema_set:
            check_json_document(schema, "schema")
            values["schema"] = normalize_schema(schema)
        async with self._unit_of_work() as work:
            row = await _collection(work.conn, key)
            if values:
                values["updated_at"] = now_ms()
                await repo.update_collection(work.conn, row["id"], values)
                work.record("collection.updated", row["id"], collection_tags(row))
        logger.info(
            "collection updated", extra={"collection": row["name"], "fields": sorted(values)}
        )
        return await self.get_collection(row["id"])

    async def delete_collection(self, key: str) -> None:
        try:
            async with self._unit_of_work() as work:
                row = await _collection(work.conn, key)
                count = await repo.count_items(work.conn, row["id"])
                if count:
                    raise _not_empty(row["name"], count)
                await repo.delete_collection(work.conn, row["id"])
                work.record(
                    "collection.deleted", row["id"], [*collection_tags(row), *listing_tags(row)]
                )
        except IntegrityError:  # an item was created meanwhile: the foreign key refuses
            raise _not_empty(row["name"], 1) from None
        logger.info("collection deleted", extra={"collection": row["name"]})

    # -- items -------------------------------------------------------------------------------

    async def create_item(
        self,
        *,
        collection: str,
        title: str,
        slug: str = "",
        data: Any = None,
        status: str = "",
        author_id: str = "",
        idempotency_key: str = "",
        principal: Principal | None = None,
    ) -> Item:
        """`principal` None is the service itself (seeding); otherwise it is the author."""
        title = _check_title(title)
        status = _check_status(status or "draft")
        policy.check_create(principal, status)
        if principal is not None:
            author_id = principal.user_id
        if slug:
            _check_slug(slug)
        data = {} if data is None else data
        check_json_document(data, "data")
        fingerprint = None
        if idempotency_key:
            # Keys are the caller's own: another caller's same key is another request. The
            # collection is named by id in the fingerprint, so its name and id replay alike.
            idempotency_key = _scoped_key(author_id, idempotency_key)
            coll_id = (await self.get_collection(collection))["id"]
            fingerprint = _fingerprint(coll_id, title, slug, data, status, author_id)
        for attempt in range(_SLUG_RACE_RETRIES + 1):
            try:
                # After two lost races the numbered candidates are contended: go random.
                item, created = await self._insert_item(
                    collection,
                    title,
                    slug,
                    data,
                    status,
                    author_id,
                    idempotency_key,
                    fingerprint,
                    contended=attempt >= 2,
                )
                break
            except IntegrityError as exc:
                violated = _violated_constraint(exc)
                if violated == "idempotency_key":
                    async with self.db.read() as conn:
                        existing = await repo.get_item_by_idempotency_key(conn, idempotency_key)
                    if existing is not None:
                        return _replayed(existing, fingerprint)
                if violated == "foreign_key":  # the collection was deleted meanwhile
                    raise _collection_not_found(collection) from None
                # A derived slug raced with a concurrent create of the same title: derive again.
                if violated == "slug" and not slug and attempt < _SLUG_RACE_RETRIES:
                    continue
                raise AlreadyExists(
                    f"an item with slug {slug or slugify(title)!r} already exists "
                    "in this collection",
                    [ErrorDetail("slug", "already taken in this collection")],
                ) from None
        if created:
            logger.info("item created", extra={"item_id": item["id"], "collection": collection})
        return item

    async def _insert_item(
        self,
        collection: str,
        title: str,
        slug: str,
        data: dict[str, Any],
        status: str,
        author_id: str,
        idempotency_key: str,
        fingerprint: str | None,
        contended: bool = False,
    ) -> tuple[Item, bool]:
        """The new item and True, or the item an earlier use of the key created and False."""
        now = now_ms()
        async with self._unit_of_work() as work:
            conn = work.conn
            if idempotency_key:
                existing = await repo.get_item_by_idempotency_key(conn, idempotency_key)
                if existing is not None:
                    return _replayed(existing, fingerprint), False
            coll = await _collection(conn, collection)
            validate_data(coll["schema"], data)
            base = slugify(title) or "item"
            if slug:
                final_slug = slug
            elif contended:
                final_slug = random_slug(base)
            else:
                taken = await repo.taken_slugs(conn, coll["id"], slug_candidates(base))
                final_slug = next_free_slug(base, taken)
            row = {
                "id": new_id(),
                "collection_id": coll["id"],
                "title": title,
                "slug": final_slug,
                "data": data,
                "status": status,
                "author_id": author_id,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "published_at": now if status == "published" else None,
                "idempotency_key": idempotency_key or None,
                "idempotency_fingerprint": fingerprint,
            }
            await repo.insert_item(conn, row)
            item = {**row, "data": orjson.dumps(data).decode(), "collection_name": coll["name"]}
            work.record("item.created", row["id"], item_tags(item))
        # What was written is what a read would return: no second round trip to re-read it.
        return item, True

    async def get_item(self, item_id: str, principal: Principal | None = None) -> Item:
        if not is_id(item_id):
            raise _item_not_found(item_id)

        async def load() -> dict[str, Any] | None:
            async with self.db.read() as conn:
                row = await repo.get_item(conn, item_id)
            return dict(row) if row is not None else None

        key = item_key(item_id)
        row: Item = await self.cache.read(
            key, load, lambda _: [key], [key], _item_not_found(item_id)
        )
        if not policy.can_see(principal, row):
            raise _item_not_found(item_id)
        return row

    async def list_items(
        self,
        *,
        collection: str = "",
        limit: int = 0,
        offset: int = 0,
        status: str = "",
        principal: Principal | None = None,
    ) -> tuple[list[Item], int, list[str]]:
        """A page of items, the total, and the cache tags the page depends on."""
        if limit < 0 or limit > MAX_LIMIT:
            raise _invalid("limit", f"must be between 1 and {MAX_LIMIT}")
        if offset < 0:
            raise _invalid("offset", "must not be negative")
        if status:
            _check_status(status)
        status, drafts_of = policy.list_scope(principal, status)
        limit = limit or DEFAULT_LIMIT
        if collection and not _is_collection_key(collection):
            raise _collection_not_found(collection)

        async def load() -> dict[str, Any]:
            async with self.db.read() as conn:
                coll = await _collection(conn, collection) if collection else None
                rows, total = await repo.list_items(
                    conn,
                    collection_id=coll["id"] if coll else None,
                    status=status or None,
                    limit=limit,
                    offset=offset,
                    drafts_of=drafts_of,
                )
            return {
                "rows": [dict(r) for r in rows],
                "total": total,
                "tags": listing_tags(coll),
            }

        # Everything that shapes the page is in the key, the reader's draft scope included.
        key = f"items:{collection}|{status}|{drafts_of}|{limit}|{offset}"
        page = await self.cache.read(
            key, load, lambda page: page["tags"], [], _collection_not_found(collection)
        )
        return page["rows"], page["total"], page["tags"]

    async def update_item(
        self,
        item_id: str,
        *,
        title: str | None = None,
        slug: str | None = None,
        data: Any = None,
        data_set: bool = False,
        status: str | None = None,
        replace_data: bool = False,
        expected_version: int | None = None,
        principal: Principal | None = None,
    ) -> Item:
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = _check_title(title)
        if slug is not None:
            values["slug"] = _check_slug(slug)
        if status is not None:
            values["status"] = _check_status(status)
        if data_set:
            if not isinstance(data, dict):
                raise _invalid("data", "expected an object")
            check_json_document(data, "data")
        if not is_id(item_id):
            raise _item_not_found(item_id)
        # Without `version` the caller asked for last-write-wins: a concurrent change is not
        # its problem, so the read-merge-write is retried on top of it (a few times).
        attempts = 1 if expected_version is not None else _CONCURRENT_UPDATE_RETRIES + 1
        for attempt in range(attempts):
            written = await self._update_once(
                item_id,
                dict(values),
                data,
                data_set,
                replace_data,
                expected_version,
                principal,
                last_attempt=attempt == attempts - 1,
            )
            if written is not None:
                return written
        raise AssertionError("unreachable: the last attempt raises or returns")

    async def _update_once(
        self,
        item_id: str,
        values: dict[str, Any],
        data: Any,
        data_set: bool,
        replace_data: bool,
        expected_version: int | None,
        principal: Principal | None,
        *,
        last_attempt: bool,
    ) -> Item | None:
        """Apply the update to the item as it is now; None when another write got in first
        (and this is not the last attempt)."""
        try:
            async with self._unit_of_work() as work:
                conn = work.conn
                current = await repo.get_item(conn, item_id)
                if current is None or not policy.can_see(principal, current):
                    raise _item_not_found(item_id)
                policy.check_change(principal, current, "content.update", values.get("status"))
                if expected_version is not None and current["version"] != expected_version:
                    raise Conflict(
                        f"the item is at version {current['version']}, "
                        f"not {expected_version}; reload it and retry"
                    )
                # The stored data is parsed once, for the merge and the no-op check alike.
                stored = {**current, "data": orjson.loads(current["data"])} if data_set else current
                if data_set:
                    merged = data if replace_data else merge_patch(stored["data"], data)
                    coll = await _collection(conn, current["collection_id"])
                    validate_data(coll["schema"], merged)
                    values["data"] = merged
                if values.get("status") == "published" and current["published_at"] is None:
                    values["published_at"] = now_ms()
                if all(stored[field] == value for field, value in values.items()):
                    return current  # nothing to write: the version stays as it is
                values["version"] = current["version"] + 1
                values["updated_at"] = now_ms()
                changed = await repo.update_item(conn, item_id, values, current["version"])
                if not changed:
                    if not last_attempt:
                        return None
                    raise Conflict("the item was changed concurrently; reload it and retry")
                work.record("item.updated", item_id, item_tags(current))
            logger.info("item updated", extra={"item_id": item_id, "fields": sorted(values)})
        except IntegrityError:
            raise AlreadyExists(
                f"an item with slug {values.get('slug')!r} already exists in this collection",
                [ErrorDetail("slug", "already taken in this collection")],
            ) from None
        # What was written is what a read would return: no second round trip to re-read it.
        written = {**values, "data": orjson.dumps(values["data"]).decode()} if data_set else values
        return {**current, **written}

    async def delete_item(self, item_id: str, principal: Principal | None = None) -> None:
        if not is_id(item_id):
            raise _item_not_found(item_id)
        async with self._unit_of_work() as work:
            current = await repo.get_item(work.conn, item_id)
            if current is None or not policy.can_see(principal, current):
                raise _item_not_found(item_id)
            policy.check_change(principal, current, "content.delete")
            if not await repo.delete_item(work.conn, item_id):
                raise _item_not_found(item_id)
            work.record("item.deleted", item_id, item_tags(current))
        logger.info("item deleted", extra={"item_id": item_id})


_SLUG_RACE_RETRIES = 5
_CONCURRENT_UPDATE_RETRIES = 8


async def _collection(conn: AsyncConnection, key: str) -> Item:
    row = await repo.get_collection(conn, key) if _is_collection_key(key) else None
    if row is None:
        raise _collection_not_found(key)
    return row


def _not_empty(name: str, count: int) -> Conflict:
    return Conflict(f"collection {name!r} still has item(s) ({count}+); delete them first")


def _shown(key: str) -> str:
    """A caller-supplied key as quoted in a message: bounded, so errors stay small."""
    return repr(key if len(key) <= 80 else key[:77] + "...")


# SonicJS's messages, which its clients compare against; the key is in the details.
COLLECTION_NOT_FOUND = "Collection not found"
CONTENT_NOT_FOUND = "Content not found"


def _collection_not_found(key: str) -> NotFound:
    return NotFound(
        COLLECTION_NOT_FOUND, [ErrorDetail("collection", f"no collection {_shown(key)}")]
    )


def _item_not_found(item_id: str) -> NotFound:
    return NotFound(CONTENT_NOT_FOUND, [ErrorDetail("id", f"no item {_shown(item_id)}")])


def _is_collection_key(key: str) -> bool:
    return bool(COLLECTION_NAME.fullmatch(key)) or is_id(key)


def _scoped_key(author_id: str, key: str) -> str:
    """The stored form of a caller's idempotency key: unique per caller, bounded in length."""
    return hashlib.sha256(f"{author_id}\n{key}".encode("utf-8", "surrogatepass")).hexdigest()


def _fingerprint(
    collection_id: str, title: str, slug: str, data: Any, status: str, author_id: str
) -> str:
    # The author is part of it: another caller reusing a key never gets someone else's item.
    request = [collection_id, title, slug, data, status, author_id]
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: objects merge key by key, `null` removes a key, anything
    else (arrays included) replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _replayed(existing: Item, fingerprint: str | None) -> Item:
    """The item a repeated create returns, if the repeat is the same request."""
    if existing["idempotency_fingerprint"] != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request; "
            "use a new key for a new item",
            [ErrorDetail("Idempotency-Key", "reused with a different request")],
        )
    return existing


def _violated_constraint(exc: IntegrityError) -> str:
    """Which constraint an insert broke, from the driver's message (PostgreSQL or SQLite)."""
    message = str(exc.orig)
    if "idempotency_key" in message:
        return "idempotency_key"
    if "uq_items_collection_slug" in message or "items.collection_id, items.slug" in message:
        return "slug"
    if "foreign key" in message.lower():
        return "foreign_key"
    return "other"
