"""Item use cases: write, read and list the items of a collection, validated against its
schema, with the draft visibility and change rules of heron_content.policy."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from heron_common.cache.tags import media_tags
from heron_common.context import request_id_var
from heron_common.db import Database
from heron_common.errors import (
    AlreadyExists,
    Conflict,
    ErrorDetail,
    Internal,
    InvalidArgument,
    NotFound,
)
from heron_common.events import EventBus
from heron_common.ids import is_id, new_id, now_ms
from heron_common.jsondoc import check_json_document, check_text
from heron_common.limits import DEFAULT_PAGE_SIZE, ITEM_STATUSES, MAX_TITLE_LENGTH
from heron_common.outbox import Outbox, actor_of
from heron_common.plugin_hooks import PluginHooks
from heron_common.query import ListQuery
from heron_common.rpc.paging import Page
from heron_common.security.permissions import Principal
from sqlalchemy import and_
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_content import includes, policy, search
from heron_content import repository as repo
from heron_content.caching import ContentCache, item_key, item_tags, listing_tags
from heron_content.media import MediaFiles, media_json
from heron_content.media_refs import MediaRef, field_refs, used_media
from heron_content.models import items as items_table
from heron_content.outbox import emit_item_events
from heron_content.query import (
    Compiler,
    Scope,
    check_fields,
    decode_cursor,
    encode_cursor,
    fingerprint,
    project,
)
from heron_content.repository import Collection, Item, Listed, Revision
from heron_content.schema import Checked, unique_fields, validate_data
from heron_content.search import search_text
from heron_content.service.collections import Collections
from heron_content.service.common import (
    UseCases,
    collection_in,
    collection_not_found,
    invalid,
    is_collection_key,
    item_not_found,
)
from heron_content.slugs import (
    is_valid_slug,
    next_free_slug,
    random_slug,
    slug_advice,
    slug_candidates,
    slugify,
)

logger = logging.getLogger("heron.content")

STATUSES = ITEM_STATUSES
FIRST_PAGE = Page(DEFAULT_PAGE_SIZE)


NO_QUERY = ListQuery()


def _projected(row: Item, fields: Sequence[str]) -> Item:
    return repo.changed(
        row, {"data": orjson.dumps(project(orjson.loads(row.data), fields)).decode()}
    )


def _check_title(title: str) -> str:
    check_text(title, "title")
    title = title.strip()
    if not title:
        raise invalid("title", "is required")
    if len(title) > MAX_TITLE_LENGTH:
        raise invalid("title", f"at most {MAX_TITLE_LENGTH} characters")
    return title


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}")
    return status


def _check_slug(slug: str) -> str:
    if not is_valid_slug(slug):
        raise invalid("slug", slug_advice(slug))
    return slug


class Items(UseCases):
    """`principal` None is the service itself (seeding); otherwise it is the caller, whose
    permissions and drafts decide what it may see and change."""

    def __init__(
        self,
        db: Database,
        cache: ContentCache,
        events: EventBus,
        collections: Collections,
        revisions_kept: int = 50,
        search_window: int = 1000,
        media: MediaFiles | None = None,
        hooks: PluginHooks | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        super().__init__(db, cache, events, revisions_kept, outbox)
        self.hooks = hooks
        """The active plugins' before hooks (heron_common.plugin_hooks); None: none."""
        self.collections = collections
        self.media = media
        """Where media fields' files are checked and expanded (None: not checked)."""
        self.search_window = search_window
        """How many of a ranked search's newest matches are scored (heron_content.search)."""

    async def create(
        self,
        principal: Principal | None,
        *,
        collection: str,
        title: str,
        slug: str = "",
        data: Any = None,
        status: str = "",
        author_id: str = "",
        idempotency_key: str = "",
    ) -> Item:
        """A new item; `author_id` is only for the service itself (the caller is the author)."""
        wanted = await self._checked_new(principal, collection, NewItem(title, slug, data, status))
        title, slug, data, status = wanted.title, wanted.slug, wanted.data, wanted.status
        if principal is not None:
            author_id = principal.user_id
        fingerprint = None
        if idempotency_key:
            # Keys are the caller's own: another caller's same key is another request. The
            # collection is named by id in the fingerprint, so its name and id replay alike.
            idempotency_key = _scoped_key(author_id, idempotency_key)
            coll_id = (await self.collections.get(collection)).id
            fingerprint = _fingerprint(coll_id, title, slug, data, status, author_id)
        for attempt in range(_SLUG_RACE_RETRIES + 1):
            try:
                # After two lost races the numbered candidates are contended: go random.
                item, created = await self._insert(
                    principal,
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
            except repo.IdempotencyKeyTaken:
                # A concurrent create with the same key won: this is its replay.
                async with self.db.read() as conn:
                    existing = await repo.get_item_by_idempotency_key(conn, idempotency_key)
                if existing is None:
                    raise _slug_taken(slug or slugify(title)) from None
                return _replayed(existing, fingerprint)
            except repo.CollectionGone:
                raise collection_not_found(collection) from None
            except repo.UniqueValueTaken as exc:
                raise _value_taken(exc.field) from None
            except repo.SlugTaken:
                # A derived slug raced with a concurrent create of the same title: derive again.
                if not slug and attempt < _SLUG_RACE_RETRIES:
                    continue
                raise _slug_taken(slug or slugify(title)) from None
        if created:
            logger.info("item created", extra={"item_id": item.id, "collection": collection})
        return item

    async def _insert(
        self,
        principal: Principal | None,
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
            coll = await collection_in(conn, collection, "share")
            checked = validate_data(coll.schema, data)
            await _check_references(conn, principal, checked)
            data = checked.data
            await self._check_media(principal, field_refs(coll.schema, data))
            base = slugify(title) or "item"
            if slug:
                final_slug = slug
            elif contended:
                final_slug = random_slug(base)
            else:
                taken = await repo.taken_slugs(conn, coll.id, slug_candidates(base))
                final_slug = next_free_slug(base, taken)
            item = _new_row(
                coll, title, final_slug, data, status, author_id, now, idempotency_key, fingerprint
            )
            await repo.insert_item(
                conn, {**_columns(item, data), "search_text": search_text(coll.schema, title, data)}
            )
            await repo.claim_unique_values(conn, coll.id, item.id, checked.unique)
            used = used_media(coll.schema, data, item.data)
            await repo.set_media(conn, item.id, used)
            writer = principal.user_id if principal is not None else author_id
            await repo.insert_revision(
                conn, repo.revision_of(item, "created", writer), data, self.revisions_kept
            )
            shown = media_tags(used) if status == "published" else []
            work.record("item.created", item.id, [*item_tags(item), *shown])
            await emit_item_events(work, actor_of(principal), None, item, data)
        # What was written is what a read would return: no second round trip to re-read it.
        return item, True

    async def import_many(
        self, principal: Principal | None, collection: str, new: Sequence[NewItem]
    ) -> list[Item]:
        """Many new items of one collection in one transaction: all of them, or none.

        Each is checked as `create` checks one (its title, status, slug, data against the
        schema, references, files, unique values, and the before hooks, which run per item), and
        each gets its revision and its events; what is saved is the per-item round trips, so a
        thousand items cost about as much as a few single creates. A problem names its item:
        `items[3].data.price`.
        """
        if not new:
            return []
        if len(new) > MAX_IMPORT:
            raise invalid("items", f"at most {MAX_IMPORT} per call; send the rest in another")
        wanted: list[NewItem] = []
        for index, one in enumerate(new):
            with _naming_item(index):
                wanted.append(await self._checked_new(principal, collection, one))
        for attempt in range(_SLUG_RACE_RETRIES + 1):
            try:
                made = await self._insert_many(principal, collection, wanted)
                break
            except repo.CollectionGone:
                raise collection_not_found(collection) from None
            except repo.UniqueValueTaken as exc:
                raise _value_taken(exc.field) from None
            except repo.SlugTaken:
                # A concurrent write took a slug derived here: derive them again, seeing it.
                if attempt < _SLUG_RACE_RETRIES:
                    continue
                raise Conflict(
                    "Another write took one of these slugs meanwhile; nothing was imported. "
                    "Send the import again."
                ) from None
        logger.info("items imported", extra={"collection": collection, "count": len(made)})
        return made

    async def _insert_many(
        self, principal: Principal | None, collection: str, wanted: list[NewItem]
    ) -> list[Item]:
        author_id = principal.user_id if principal is not None else ""
        now = now_ms()
        async with self._unit_of_work() as work:
            conn = work.conn
            coll = await collection_in(conn, collection, "share")
            checks: list[Checked] = []
            for index, one in enumerate(wanted):
                with _naming_item(index):
                    checks.append(validate_data(coll.schema, one.data))
            # One query for the references of them all (per thousand items they point to).
            pointed = {r.item_id for checked in checks for r in checked.references}
            found = await repo.item_refs(conn, pointed) if pointed else {}
            files: list[MediaRef] = []
            for index, checked in enumerate(checks):
                with _naming_item(index):
                    await _check_references(conn, principal, checked, found)
                files += [
                    dataclasses.replace(ref, path=f"items[{index}].{ref.path}")
                    for ref in field_refs(coll.schema, checked.data)
                ]
            await self._check_media(principal, files)  # one call for the files of them all
            slugs = await _import_slugs(conn, coll.id, wanted)
            made: list[tuple[Item, dict[str, Any], set[str]]] = []
            for one, checked, slug in zip(wanted, checks, slugs, strict=True):
                item = _new_row(coll, one.title, slug, checked.data, one.status, author_id, now)
                made.append((item, checked.data, used_media(coll.schema, checked.data, item.data)))
            await repo.insert_items(
                conn,
                [
                    {**_columns(i, d), "search_text": search_text(coll.schema, i.title, d)}
                    for i, d, _ in made
                ],
            )
            for (item, _, used), checked in zip(made, checks, strict=True):
                if checked.unique:
                    await repo.claim_unique_values(conn, coll.id, item.id, checked.unique)
                if used:
                    await repo.set_media(conn, item.id, used)
            await repo.insert_revisions(
                conn,
                [(repo.revision_of(i, "created", author_id), d) for i, d, _ in made],
                self.revisions_kept,
            )
            for item, data, used in made:
                shown = media_tags(used) if item.status == "published" else []
                work.record("item.created", item.id, [*item_tags(item), *shown])
                await emit_item_events(work, actor_of(principal), None, item, data)
        return [item for item, _, _ in made]

    async def _checked_new(
        self, principal: Principal | None, collection: str, one: NewItem
    ) -> NewItem:
        """A new item as it is written: checked, and as the before hooks leave it (checked
        again then), before anything is written (for `create` and for each of an import)."""
        title = _check_title(one.title)
        status = _check_status(one.status or "draft")
        policy.check_create(principal, status)
        slug, data = one.slug, one.data
        if self.hooks is not None and self.hooks.handles(BEFORE_CREATE):
            # A plugin may change the item (checked again below, as any item is) or refuse it.
            changed = await self._before(
                BEFORE_CREATE,
                principal,
                {
                    "collection": collection,
                    "title": title,
                    "slug": slug,
                    "status": status,
                    "data": {} if data is None else data,
                },
            )
            title = _check_title(_text_of(changed, "title", title))
            slug = _text_of(changed, "slug", slug)
            status = _check_status(_text_of(changed, "status", status))
            policy.check_create(principal, status)
            data = changed.get("data", data)
        if slug:
            _check_slug(slug)
        data = {} if data is None else data
        check_json_document(data, "data")
        return NewItem(title=title, slug=slug, data=data, status=status)

    async def get(self, principal: Principal | None, item_id: str) -> Item:
        if not is_id(item_id):
            raise item_not_found(item_id)

        async def load() -> Item | None:
            async with self.db.read() as conn:
                return await repo.get_item(conn, item_id)

        key = item_key(item_id)
        row: Item = await self.cache.read(
            key, load, lambda _: [key], [key], item_not_found(item_id)
        )
        if not policy.can_see(principal, row):
            raise item_not_found(item_id)
        return row

    async def list(
        self,
        principal: Principal | None,
        *,
        collection: str = "",
        page: Page = FIRST_PAGE,
        status: str = "",
        query: ListQuery = NO_QUERY,
        cursor: str = "",
    ) -> Listed:
        """A page of items as `query` filters, sorts and projects them (heron_content.query),
        and the cache tags it depends on."""
        if status:
            _check_status(status)
        status, drafts_of = policy.list_scope(principal, status)
        if collection and not is_collection_key(collection):
            raise collection_not_found(collection)
        if cursor and page.offset:
            raise invalid("cursor", "a cursor replaces offset: send one or the other")
        scope = Scope(*policy.reader_scope(principal))

        async def load() -> Listed:
            # Compiled on a miss only: a cached page costs its key, nothing more. A query that
            # does not fit the schema is refused here, and never cached.
            collections = await self.collections.list()
            coll = next((c for c in collections if collection in (c.id, c.name)), None)
            if collection and coll is None:
                raise collection_not_found(collection)
            listing, include, query_id = self._listing(
                query, cursor, page, coll, collections, scope, status, drafts_of
            )
            async with self.db.read() as conn:
                found = await repo.list_items(conn, listing)
                rows, included = await includes.expand(conn, principal, found.rows, include)
            if query.fields:
                rows = [_projected(row, query.fields) for row in rows]
            next_cursor = (
                encode_cursor(query_id, found.last_keys, found.window) if found.last_keys else ""
            )
            return Listed(rows, found.total, next_cursor, [*listing_tags(coll), *included])

        # Everything that shapes the page is in the key: the reader's draft scope, and what a
        # filter through a reference may reach (an editor's status=published page is not an
        # anonymous reader's when a relation leads to drafts).
        shape = hashlib.sha256(query.to_bytes() + b"|" + cursor.encode()).hexdigest()[:24]
        reach = f"{scope.every}:{scope.author}"
        key = f"items:{collection}|{status}|{drafts_of}|{reach}|{page.limit}|{page.offset}|{shape}"
        listed: Listed = await self.cache.read(
            key, load, lambda found: found.tags, [], collection_not_found(collection)
        )
        if query.include and collection and self.media is not None:
            listed = await self._media_included(principal, listed, query, collection)
        return listed

    async def _media_included(
        self, principal: Principal | None, listed: Listed, query: ListQuery, collection: str
    ) -> Listed:
        """The page with its included media fields' files in place of their ids (asked of the
        media service on every read: the files' own changes never wait for a cache)."""
        collections = await self.collections.list()
        coll = next((c for c in collections if collection in (c.id, c.name)), None)
        if coll is None or self.media is None:
            return listed
        tree = includes.plan(query.include, coll.schema, {c.name: c.schema for c in collections})
        if not includes.has_media(tree):
            return listed
        media = self.media

        async def find(ids: Iterable[str]) -> dict[str, dict[str, Any]]:
            files = await media.find(principal, ids)
            return {i: media_json(m) for i, m in files.items()}

        rows, tags = await includes.expand_media(listed.rows, tree, find)
        return dataclasses.replace(listed, rows=rows, tags=[*listed.tags, *tags])

    def _listing(
        self,
        query: ListQuery,
        cursor: str,
        page: Page,
        coll: Collection | None,
        collections: Sequence[Collection],
        scope: Scope,
        status: str,
        drafts_of: str | None,
    ) -> tuple[repo.Listing, includes.Node, str]:
        """The query compiled for the store (checked against the schema: a 400 otherwise), what
        to include, and the id its cursors carry."""
        dialect = self.db.engine.dialect.name
        schema = coll.schema if coll else None
        compiler = Compiler(
            items_table, dialect, schema, {c.name: c.schema for c in collections}, scope
        )
        condition = compiler.where(query.filter)
        window = None
        if query.search and not query.sort:  # ranked: the window holds the match
            window = search.window(dialect, items_table, query.search, self.search_window)
        elif query.search:
            matched = search.condition(dialect, items_table, query.search)
            condition = matched if condition is None else and_(condition, matched)
        keys = compiler.order(query.sort, rank=None if window is None else window.rank)
        check_fields(query.fields, schema, compiler.schemas)
        include = includes.plan(query.include, schema, compiler.schemas)
        query_id = fingerprint(
            coll.id if coll else "", status, query.filter, list(query.sort), query.search
        )
        after = after_rest = None
        past_window = False
        if cursor:
            values, bound = decode_cursor(cursor, query_id, keys, dialect)
            after = compiler.after(keys, values)
            if window is not None:
                if bound is None:
                    raise invalid("cursor", "is damaged")
                window = dataclasses.replace(window, bound=bound)
                past_window = values[0] == search.UNRANKED
                after_rest = compiler.after(keys[1:], values[1:]) if past_window else None
        listing = repo.Listing(
            collection_id=coll.id if coll else None,
            status=status or None,
            drafts_of=drafts_of,
            condition=condition,
            keys=keys,
            order_by=compiler.order_by(keys),
            after=after,
            limit=page.limit,
            offset=page.offset,
            count_total=query.total,
            window=window,
            past_window=past_window,
            after_rest=after_rest,
        )
        return listing, include, query_id

    async def update(
        self,
        principal: Principal | None,
        item_id: str,
        *,
        title: str | None = None,
        slug: str | None = None,
        data: Any = None,
        data_set: bool = False,
        status: str | None = None,
        replace_data: bool = False,
        expected_version: int | None = None,
        action: str = "updated",
        comment: str = "",
    ) -> Item:
        """`comment` (why) is handed to the plugins' hooks only."""
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = _check_title(title)
        if slug is not None:
            values["slug"] = _check_slug(slug)
        if status is not None:
            values["status"] = _check_status(status)
        if data_set:
            if not isinstance(data, dict):
                raise invalid("data", "expected an object")
            check_json_document(data, "data")
        if not is_id(item_id):
            raise item_not_found(item_id)
        if self.hooks is not None and self.hooks.handles(BEFORE_UPDATE):
            asked = {**values, **({"data": data} if data_set else {})}
            # The item as it is (cached), so a plugin knows what the change is from.
            found = await self.get(principal, item_id)
            current = {
                "collection": found.collection_name,
                "status": found.status,
                "version": found.version,
                "author_id": found.author_id,
            }
            changed = await self._before(
                BEFORE_UPDATE,
                principal,
                {"id": item_id, **asked},
                current=current,
                comment=comment,
            )
            for name in ("title", "slug", "status"):
                if name in changed and changed[name] != asked.get(name):
                    checks = {"title": _check_title, "slug": _check_slug, "status": _check_status}
                    values[name] = checks[name](_text_of(changed, name, ""))
            if data_set and "data" in changed:
                data = changed["data"]
                if not isinstance(data, dict):
                    raise invalid("data", "a plugin's hook made it something other than an object")
        # Without `version` the caller asked for last-write-wins: a concurrent change is not
        # its problem, so the read-merge-write is retried on top of it (a few times).
        attempts = 1 if expected_version is not None else _CONCURRENT_UPDATE_RETRIES + 1
        for attempt in range(attempts):
            written = await self._update_once(
                principal,
                item_id,
                dict(values),
                data if data_set else None,
                data_set,
                replace_data,
                expected_version,
                action=action,
                last_attempt=attempt == attempts - 1,
            )
            if written is not None:
                return written
        raise AssertionError("unreachable: the last attempt raises or returns")

    async def _update_once(
        self,
        principal: Principal | None,
        item_id: str,
        values: dict[str, Any],
        data: Any,
        data_set: bool,
        replace_data: bool,
        expected_version: int | None,
        *,
        action: str,
        last_attempt: bool,
    ) -> Item | None:
        """Apply the update to the item as it is now; None when another write got in first
        (and this is not the last attempt)."""
        try:
            async with self._unit_of_work() as work:
                conn = work.conn
                current = await repo.get_item(conn, item_id, for_update=True)
                if current is None or not policy.can_see(principal, current):
                    raise item_not_found(item_id)
                policy.check_change(principal, current, "content.update", values.get("status"))
                _check_version(current, expected_version)
                merged = stored = None
                coll: Collection | None = None
                if data_set:
                    # The stored data is parsed once, for the merge and the no-op check alike.
                    stored = orjson.loads(current.data)
                    merged = data if replace_data else merge_patch(stored, data)
                    coll = await collection_in(conn, current.collection_id, "share")
                    checked = validate_data(coll.schema, merged, previous=stored)
                    await _check_references(conn, principal, checked)
                    merged = checked.data
                    if merged != stored:
                        values["data"] = orjson.dumps(merged).decode()
                        await _move_unique_values(conn, coll, item_id, stored, checked)
                        # Only files it did not name before: one deleted since is no reason
                        # to refuse a change of something else.
                        kept = {r.media_id for r in field_refs(coll.schema, stored)}
                        named = field_refs(coll.schema, merged)
                        await self._check_media(
                            principal, [r for r in named if r.media_id not in kept]
                        )
                if values.get("status") == "published" and current.published_at is None:
                    values["published_at"] = now_ms()
                if all(getattr(current, field) == value for field, value in values.items()):
                    return current  # nothing to write: the version stays as it is
                values["version"] = current.version + 1
                values["updated_at"] = now_ms()
                columns = {**values, "data": merged} if "data" in values else dict(values)
                if "title" in values or "data" in values:
                    coll = coll or await collection_in(conn, current.collection_id, "share")
                    text_of = merged if merged is not None else orjson.loads(current.data)
                    title = values.get("title", current.title)
                    columns["search_text"] = search_text(coll.schema, title, text_of)
                written = await repo.update_item(conn, item_id, columns, current.version)
                if not written:
                    if not last_attempt:
                        return None
                    raise _changed_concurrently()
                written_item = repo.changed(current, values)
                writer = principal.user_id if principal is not None else current.author_id
                # The data as stored now: merged when the request had data (already parsed).
                document = merged if data_set else orjson.loads(current.data)
                await repo.insert_revision(
                    conn,
                    repo.revision_of(written_item, action, writer),
                    document,
                    self.revisions_kept,
                )
                shown = await _media_moved(conn, current, written_item, coll, stored, merged)
                work.record("item.updated", item_id, [*item_tags(current), *shown])
                await emit_item_events(work, actor_of(principal), current, written_item, document)
            logger.info("item updated", extra={"item_id": item_id, "fields": sorted(values)})
        except repo.SlugTaken:
            raise _slug_taken(values.get("slug", "")) from None
        except repo.UniqueValueTaken as exc:
            raise _value_taken(exc.field) from None
        # What was written is what a read would return: no second round trip to re-read it.
        return written_item

    # -- history -----------------------------------------------------------------------------
    async def revisions(
        self, principal: Principal | None, item_id: str, page: Page
    ) -> tuple[Sequence[Revision], int]:
        """The item's revisions, newest first; those made while it was not published only for
        callers who may see its drafts."""
        item = await self.get(principal, item_id)
        statuses = None if policy.sees_unpublished(principal, item.author_id) else ["published"]
        async with self.db.read() as conn:
            return await repo.list_revisions(conn, item_id, statuses, page.limit, page.offset)

    async def revision(self, principal: Principal | None, item_id: str, version: int) -> Revision:
        item = await self.get(principal, item_id)
        async with self.db.read() as conn:
            row = await repo.get_revision(conn, item_id, version) if 0 < version < 2**31 else None
        if row is None or (
            row.status != "published" and not policy.sees_unpublished(principal, item.author_id)
        ):
            raise NotFound(
                "Revision not found",
                [ErrorDetail("version", f"no revision {version} of this item")],
            )
        return row

    async def restore(
        self,
        principal: Principal | None,
        item_id: str,
        version: int,
        *,
        expected_version: int | None = None,
    ) -> Item:
        """The item with the revision's title, slug and data, checked against the schema as it
        is today; its status stays (publishing is its own decision)."""
        row = await self.revision(principal, item_id, version)
        return await self.update(
            principal,
            item_id,
            title=row.title,
            slug=row.slug,
            data=orjson.loads(row.data),
            data_set=True,
            replace_data=True,
            expected_version=expected_version,
            action="restored",
        )

    async def schedule(
        self,
        principal: Principal | None,
        item_id: str,
        *,
        publish_at: int | None = None,
        unpublish_at: int | None = None,
        cancel: bool = False,
        expected_version: int | None = None,
    ) -> Item:
        """Have the scheduler publish and/or unpublish the item at the given times (epoch ms,
        in the future), or, with `cancel`, no longer. Either is an editor's decision
        (`content.publish`), and a change of the item: a new version, a `scheduled` revision.
        The scheduler acts with the permissions the scheduler's role has when it runs."""
        if cancel and (publish_at is not None or unpublish_at is not None):
            raise invalid("schedule", "cancel, or give times: not both")
        if not cancel and publish_at is None and unpublish_at is None:
            raise invalid("publish_at", "give publish_at, unpublish_at or both")
        now = now_ms()
        for name, moment in (("publish_at", publish_at), ("unpublish_at", unpublish_at)):
            if moment is not None and moment <= now:
                raise invalid(name, "must be in the future")
        if publish_at is not None and unpublish_at is not None and unpublish_at <= publish_at:
            raise invalid("unpublish_at", "must be after publish_at")
        if not is_id(item_id):
            raise item_not_found(item_id)
        async with self._unit_of_work() as work:
            current = await repo.get_item(work.conn, item_id, for_update=True)
            if current is None or not policy.can_see(principal, current):
                raise item_not_found(item_id)
            policy.check_schedule(principal, current)
            _check_version(current, expected_version)
            values: dict[str, Any] = {
                "publish_at": None if cancel else publish_at,
                "unpublish_at": None if cancel else unpublish_at,
                "scheduled_by": "" if cancel or principal is None else principal.user_id,
                "scheduled_role": "" if cancel or principal is None else principal.role,
                "schedule_error": "",
                "schedule_attempts": 0,
                "schedule_retry_at": None,
            }
            if all(getattr(current, f) == v for f, v in values.items()):
                return current
            values["version"] = current.version + 1
            values["updated_at"] = now
            if not await repo.update_item(work.conn, item_id, values, current.version):
                raise _changed_concurrently()
            written = repo.changed(current, values)
            writer = principal.user_id if principal is not None else current.author_id
            await repo.insert_revision(
                work.conn,
                repo.revision_of(written, "scheduled", writer),
                orjson.loads(current.data),
                self.revisions_kept,
            )
            work.record("item.updated", item_id, item_tags(current))
            await emit_item_events(work, actor_of(principal), current, written)
        self.cache.upcoming.note(publish_at)
        self.cache.upcoming.note(unpublish_at)
        logger.info("item scheduled", extra={"item_id": item_id, "cancel": cancel})
        return written

    async def delete(
        self, principal: Principal | None, item_id: str, *, expected_version: int | None = None
    ) -> None:
        if not is_id(item_id):
            raise item_not_found(item_id)
        if self.hooks is not None and self.hooks.handles(BEFORE_DELETE):
            await self._before(BEFORE_DELETE, principal, {"id": item_id})
        async with self._unit_of_work() as work:
            current = await repo.get_item(work.conn, item_id, for_update=True)
            if current is None or not policy.can_see(principal, current):
                raise item_not_found(item_id)
            policy.check_change(principal, current, "content.delete")
            _check_version(current, expected_version)
            shown = (
                media_tags(await repo.media_of(work.conn, item_id))
                if current.status == "published"
                else []
            )
            if not await repo.delete_item(work.conn, item_id, expected_version):
                if expected_version is not None:
                    raise _changed_concurrently()
                raise item_not_found(item_id)
            work.record("item.deleted", item_id, [*item_tags(current), *shown])
            await emit_item_events(work, actor_of(principal), current, None)
        logger.info("item deleted", extra={"item_id": item_id})

    async def _before(
        self,
        event: str,
        principal: Principal | None,
        item: dict[str, Any],
        **more: Any,
    ) -> dict[str, Any]:
        """The item as the active plugins' `event` hooks leave it (or their refusal); `more`
        goes into the payload as it is (the item's `current` state, a `comment`)."""
        assert self.hooks is not None
        payload = {
            "item": item,
            "actor": actor_of(principal),
            "request_id": request_id_var.get(),
            **more,
        }
        changed = (await self.hooks.before(event, payload)).get("item")
        if not isinstance(changed, dict):
            raise Internal(f"a plugin's {event} hook left no item in its payload")
        return changed

    async def published_media(self, ids: Iterable[str]) -> set[str]:
        """Which of these files published items use (at most `MAX_MEDIA_ASKED` of them)."""
        wanted = {i for i in ids if is_id(i)}
        if len(wanted) > MAX_MEDIA_ASKED:
            raise invalid("ids", f"at most {MAX_MEDIA_ASKED} at once")
        if not wanted:
            return set()
        async with self.db.read() as conn:
            return await repo.published_media(conn, wanted)

    async def _check_media(self, principal: Principal | None, refs: Sequence[MediaRef]) -> None:
        """The files a writer names exist and fit their fields (the service's own writes,
        principal None, are not checked)."""
        if refs and principal is not None and self.media is not None:
            await self.media.check(principal, refs)


async def _media_moved(
    conn: AsyncConnection,
    before: Item,
    after: Item,
    coll: Collection | None,
    stored: dict[str, Any] | None,
    data: dict[str, Any] | None,
) -> list[str]:
    """Record the files an updated item uses now (when its data changed), and the tags of the
    files whose publication it may have changed: those it used or uses, when it was or is
    published. A change of data that uses no file, before or after, costs no query."""
    data_changed = after.data != before.data
    if data_changed and coll is not None and stored is not None and data is not None:
        used = used_media(coll.schema, data, after.data)
        if not used and not used_media(coll.schema, stored, before.data):
            return []
        had = await repo.media_of(conn, after.id)
        await repo.set_media(conn, after.id, used, had)
    elif after.status != before.status:
        used = had = await repo.media_of(conn, after.id)
    else:
        return []
    if "published" not in (before.status, after.status):
        return []
    return media_tags(had | used)


MAX_MEDIA_ASKED = 1000
BEFORE_CREATE, BEFORE_UPDATE, BEFORE_DELETE = (
    "content:beforeCreate",
    "content:beforeUpdate",
    "content:beforeDelete",
)


def _text_of(item: dict[str, Any], name: str, default: str) -> str:
    value = item.get(name, default)
    if not isinstance(value, str):
        raise Internal(f"a plugin's hook made {name} a {type(value).__name__}, not text")
    return value


_SLUG_RACE_RETRIES = 5
_CONCURRENT_UPDATE_RETRIES = 8


async def _check_references(
    conn: AsyncConnection,
    principal: Principal | None,
    checked: Checked,
    found: dict[str, Any] | None = None,
) -> None:
    """Every item the data points to exists, in a collection its field allows, and is one
    the writer may see (a draft it may not see is as missing: its existence does not leak).
    One query for all of them, or none with `found` (what `repo.item_refs` gave for them)."""
    if not checked.references:
        return
    if found is None:
        found = await repo.item_refs(conn, {r.item_id for r in checked.references})
    problems = []
    for ref in checked.references:
        target = found.get(ref.item_id)
        if target is None or not policy.can_see(principal, target):
            problems.append(ErrorDetail(ref.path, f"no item {ref.item_id!r}"))
        elif target.collection_name not in ref.collections:
            allowed = ", ".join(ref.collections)
            problems.append(ErrorDetail(ref.path, f"must be an item of {allowed}"))
    if problems:
        raise InvalidArgument("the item data points to items that do not exist", problems[:50])


def _new_row(
    coll: Collection,
    title: str,
    slug: str,
    data: dict[str, Any],
    status: str,
    author_id: str,
    now: int,
    idempotency_key: str = "",
    fingerprint: str | None = None,
) -> Item:
    """A new item of `coll` at version 1, as written at `now`."""
    return Item(
        id=new_id(),
        collection_id=coll.id,
        title=title,
        slug=slug,
        data=orjson.dumps(data).decode(),
        status=status,
        author_id=author_id,
        version=1,
        created_at=now,
        updated_at=now,
        published_at=now if status == "published" else None,
        idempotency_key=idempotency_key or None,
        idempotency_fingerprint=fingerprint,
        collection_name=coll.name,
    )


MAX_IMPORT = 1000


@dataclasses.dataclass(frozen=True)
class NewItem:
    """One item of an import, as a client sends it (`data` parsed)."""

    title: str
    slug: str = ""
    data: Any = None
    status: str = ""


@contextmanager
def _naming_item(index: int) -> Iterator[None]:
    """Name the imported item a problem is with: `items[3].data.price`."""
    try:
        yield
    except (InvalidArgument, AlreadyExists) as exc:
        exc.details = [
            dataclasses.replace(d, field=f"items[{index}].{d.field}") for d in exc.details
        ] or [ErrorDetail(f"items[{index}]", exc.message)]
        exc.message = f"items[{index}]: {exc.message}"
        raise


async def _import_slugs(
    conn: AsyncConnection, collection_id: str, wanted: Sequence[NewItem]
) -> list[str]:
    """Each imported item's slug: its own, or derived from its title as `create` derives one,
    free of the collection's and of each other's (one query per thousand candidates)."""
    given = [one.slug for one in wanted if one.slug]
    held = await repo.taken_slugs_among(conn, collection_id, given) if given else set()
    seen: set[str] = set()
    for index, one in enumerate(wanted):
        if one.slug and (one.slug in held or one.slug in seen):
            with _naming_item(index):
                raise _slug_taken(one.slug)
        seen.add(one.slug)
    bases = [slugify(one.title) or "item" for one in wanted]
    # The bases first: only those taken, or repeated, need their numbered candidates looked up.
    counts = Counter(bases)
    taken = await repo.taken_slugs_among(conn, collection_id, counts)
    crowded = taken | {base for base, n in counts.items() if n > 1}
    if crowded:
        more = {c for base in crowded for c in slug_candidates(base)}
        taken |= await repo.taken_slugs_among(conn, collection_id, more)
    taken |= set(given)
    slugs = []
    for one, base in zip(wanted, bases, strict=True):
        slug = one.slug or next_free_slug(base, taken)
        taken.add(slug)
        slugs.append(slug)
    return slugs


def _columns(item: Item, data: dict[str, Any]) -> dict[str, Any]:
    """The item's stored columns (its data as a document, not text)."""
    values = {f: getattr(item, f) for f in _ITEM_COLUMNS}
    values["data"] = data
    return values


_ITEM_COLUMNS = tuple(f for f in Item.__dataclass_fields__ if f != "collection_name")


async def _move_unique_values(
    conn: AsyncConnection,
    coll: Collection,
    item_id: str,
    stored: dict[str, Any],
    checked: Checked,
) -> None:
    """Unique fields whose value changed give up the old value and claim the new one."""
    moved = [n for n in unique_fields(coll.schema) if stored.get(n) != checked.data.get(n)]
    if not moved:
        return
    await repo.release_unique_values(conn, item_id, moved)
    claims = {n: checked.unique[n] for n in moved if n in checked.unique}
    await repo.claim_unique_values(conn, coll.id, item_id, claims)


def _check_version(current: Item, expected: int | None) -> None:
    if expected is not None and current.version != expected:
        raise Conflict(
            f"the item is at version {current.version}, not {expected}; reload it and retry",
            [ErrorDetail("version", f"the item is at version {current.version}")],
        )


def _changed_concurrently() -> Conflict:
    return Conflict("the item was changed concurrently; reload it and retry")


def _value_taken(field: str) -> AlreadyExists:
    return AlreadyExists(
        f"another item of this collection already has this {field}",
        [ErrorDetail(f"data.{field}", "already used by another item of this collection")],
    )


def _slug_taken(slug: str) -> AlreadyExists:
    return AlreadyExists(
        f"an item with slug {slug!r} already exists in this collection",
        [ErrorDetail("slug", "already taken in this collection")],
    )


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
    if existing.idempotency_fingerprint != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request; "
            "use a new key for a new item",
            [ErrorDetail("Idempotency-Key", "reused with a different request")],
        )
    return existing
