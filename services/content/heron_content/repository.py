"""Content queries (SQLAlchemy Core): no policy, no validation, only SQL. Rows come back as
`Collection` and `Item`; a write that breaks a constraint raises the conflict it means
(`SlugTaken`, `IdempotencyKeyTaken`, `NameTaken`, `CollectionInUse`, `CollectionGone`)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from heron_common.db.violations import violation
from sqlalchemy import Text, bindparam, cast, func, not_, or_, select, union_all
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_content.models import (
    collections,
    item_media,
    item_revisions,
    item_unique_values,
    items,
)
from heron_content.search import EVERYTHING
from heron_content.slugs import CANDIDATES


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    name: str
    display_name: str
    description: str
    schema: dict[str, Any]
    managed: bool
    created_at: int
    updated_at: int
    version: int = 1
    """Bumped by every change of the collection."""
    source: str = ""
    """The file that defines it (collections as code); "" when the API does."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    collection_id: str
    title: str
    slug: str
    data: str
    """The item's data as JSON text: reads pass it on without parsing it."""
    status: str
    author_id: str
    version: int
    created_at: int
    updated_at: int
    published_at: int | None
    idempotency_key: str | None
    idempotency_fingerprint: str | None
    collection_name: str
    publish_at: int | None = None
    """When the scheduler publishes the item (epoch ms); None: not scheduled."""
    unpublish_at: int | None = None
    scheduled_by: str = ""
    scheduled_role: str = ""
    schedule_error: str = ""
    """Why the last scheduled change failed ("" when it did not)."""
    schedule_attempts: int = 0
    schedule_retry_at: int | None = None


@dataclass(frozen=True, slots=True)
class ItemRef:
    """What a reference to an item needs to know of it: where it is and who may see it."""

    id: str
    collection_name: str
    status: str
    author_id: str


@dataclass(frozen=True, slots=True)
class Listed:
    """A listing's page as the service caches it: its items, the total (if counted), the
    cursor of the next page ("" at the end) and the cache tags it depends on."""

    rows: list[Item]
    total: int | None
    next_cursor: str
    tags: list[str]


# What the cache may store and rebuild (heron_common.cache.codec.MsgpackCodec).
RECORDS = (Collection, Item, Listed)  # revisions are not cached


R = TypeVar("R", Collection, Item)


def changed(row: R, values: Mapping[str, Any]) -> R:
    """`row` with `values` applied (the columns a write set)."""
    return dataclasses.replace(row, **values)


class RepositoryConflict(Exception):
    """A write the store's constraints refused."""


class SlugTaken(RepositoryConflict):
    pass


class IdempotencyKeyTaken(RepositoryConflict):
    pass


class NameTaken(RepositoryConflict):
    pass


class CollectionGone(RepositoryConflict):
    """The collection an item was written to no longer exists."""


class CollectionInUse(RepositoryConflict):
    """The collection still has items."""


class UniqueValueTaken(RepositoryConflict):
    """Another item of the collection holds this value of a unique field."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def value_key(value: Any) -> str:
    """A unique field's value as stored for comparison: SHA-256 over canonical JSON (exact:
    `"Ab"` and `"ab"` are two values)."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _item_conflict(exc: IntegrityError) -> RepositoryConflict | IntegrityError:
    broken = violation(exc)
    if broken.is_unique("items", ["idempotency_key"]):
        return IdempotencyKeyTaken()
    if broken.is_unique("items", ["collection_id", "slug"], name="uq_items_collection_slug"):
        return SlugTaken()
    if broken.kind == "foreign_key":
        return CollectionGone()
    return exc


# Item data leaves the database as JSON text and travels on as bytes: services never parse it
# on reads.
_ITEM_COLUMNS = (
    *(c for c in items.c if c.name not in ("data", "search_text")),
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


# A schema change holds its collection FOR UPDATE while it fits the items to it; item writes
# hold it FOR KEY SHARE while they validate against it, so neither misses the other. (SQLite
# has one writer at a time: the clause is left out there.)
_LOCKS = {
    None: _COLLECTION_BY_KEY,
    "share": _COLLECTION_BY_KEY.with_for_update(read=True, key_share=True),
    "update": _COLLECTION_BY_KEY.with_for_update(),
}


def _collection(row: RowMapping) -> Collection:
    return Collection(**row)


def _item(row: RowMapping) -> Item:
    return Item(**row)


async def insert_collection(conn: AsyncConnection, row: Collection) -> None:
    try:
        await conn.execute(collections.insert().values(**dataclasses.asdict(row)))
    except IntegrityError as exc:
        if violation(exc).kind == "unique":
            raise NameTaken() from None
        raise


async def get_collection(
    conn: AsyncConnection, key: str, lock: Literal["share", "update"] | None = None
) -> Collection | None:
    """A collection by id or by name; `lock`: held until the transaction ends, `share` by an
    item write (against a schema change), `update` by a schema change."""
    row = (await conn.execute(_LOCKS[lock], {"key": key})).mappings().first()
    return _collection(row) if row is not None else None


async def list_collections(conn: AsyncConnection) -> list[Collection]:
    # In the order they were made, as SonicJS lists them (its clients take the first as the
    # default); the name breaks ties.
    query = select(collections).order_by(collections.c.created_at, collections.c.name)
    return [_collection(r) for r in (await conn.execute(query)).mappings()]


async def update_collection(conn: AsyncConnection, id_: str, values: Mapping[str, Any]) -> None:
    await conn.execute(collections.update().where(collections.c.id == id_).values(**values))


async def delete_collection(conn: AsyncConnection, id_: str) -> None:
    try:
        await conn.execute(collections.delete().where(collections.c.id == id_))
    except IntegrityError as exc:  # an item was created meanwhile: the foreign key refuses
        if violation(exc).kind == "foreign_key":
            raise CollectionInUse() from None
        raise


async def count_items(conn: AsyncConnection, collection_id: str) -> int:
    query = select(func.count()).select_from(items).where(items.c.collection_id == collection_id)
    return int((await conn.execute(query)).scalar_one())


_INSERT_ITEM = items.insert()


async def insert_item(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """Insert an item from its column values (`data` as a JSON document)."""
    try:
        # Parameters, not `.values()`: the compiled INSERT is reused as is, with no
        # per-call coercion of each value into the statement.
        await conn.execute(_INSERT_ITEM, dict(values))
    except IntegrityError as exc:
        raise _item_conflict(exc) from None


async def insert_items(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """`insert_item` for many items: one statement, its rows sent in batches."""
    if not rows:
        return
    try:
        await conn.execute(_INSERT_ITEM, rows)
    except IntegrityError as exc:
        raise _item_conflict(exc) from None


_ITEM_BY_ID_FOR_UPDATE = _ITEM_BY_ID.with_for_update(of=items)


async def get_item(conn: AsyncConnection, id_: str, *, for_update: bool = False) -> Item | None:
    """An item by id; `for_update`: locked until the transaction ends, so concurrent writers
    of one item take turns instead of retrying (SQLite: one writer at a time anyway)."""
    query = _ITEM_BY_ID_FOR_UPDATE if for_update else _ITEM_BY_ID
    row = (await conn.execute(query, {"id": id_})).mappings().first()
    return _item(row) if row is not None else None


async def items_by_ids(conn: AsyncConnection, ids: set[str]) -> dict[str, Item]:
    """The items among `ids` that exist, by id: one query (per thousand ids)."""
    found: dict[str, Item] = {}
    for chunk in _chunks(ids):
        query = (
            select(*_ITEM_COLUMNS).select_from(_ITEMS_WITH_COLLECTION).where(items.c.id.in_(chunk))
        )
        found.update((r["id"], _item(r)) for r in (await conn.execute(query)).mappings())
    return found


async def collection_items(conn: AsyncConnection, collection_id: str) -> list[Item]:
    """Every item of a collection, for a schema change to fit to it."""
    query = (
        select(*_ITEM_COLUMNS)
        .select_from(_ITEMS_WITH_COLLECTION)
        .where(items.c.collection_id == collection_id)
    )
    return [_item(r) for r in (await conn.execute(query)).mappings()]


async def get_item_by_idempotency_key(conn: AsyncConnection, key: str) -> Item | None:
    row = (await conn.execute(_ITEM_BY_IDEMPOTENCY_KEY, {"key": key})).mappings().first()
    return _item(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class Listing:
    """What a listing asks of the store: which items, in which order, which page."""

    collection_id: str | None
    status: str | None
    drafts_of: str | None
    """Published items, plus this author's (None: no such restriction)."""
    condition: Any
    """The compiled filter, or None."""
    keys: Sequence[Any]
    """heron_content.query.SortKey per sort key, the id last."""
    order_by: Sequence[Any]
    after: Any
    """The cursor's condition, or None."""
    limit: int
    offset: int
    count_total: bool
    window: Any = None
    """A ranked search's heron_content.search.Window, or None."""
    past_window: bool = False
    """The cursor is past every member of the window (`after` then skips its rank key)."""
    after_rest: Any = None
    """With a window: the cursor's condition among the matches outside it, or None."""


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Item]
    total: int | None
    """Every match, with `count_total` (a short first page counts itself)."""
    last_keys: list[Any] | None
    """The last row's sort values, when more rows follow."""
    window: tuple[int, str] | None = None
    """The bound of the search window this page used (for its cursor)."""


async def list_items(conn: AsyncConnection, listing: Listing) -> Page:
    """A page of items in the listing's order, one row more than asked to know if more follow.

    The total is a second statement, only when asked for: `count(*) over ()` would make the
    database read and sort every matching row for each page, where the page alone walks an
    index. A ranked search's page is the window's members, best first, then the matches
    outside it, newest first (heron_content.search): two bounded selects, the second along
    the newest-first index, so no match outside the window is ever scored.
    """
    conditions = []
    if listing.collection_id is not None:
        conditions.append(items.c.collection_id == listing.collection_id)
    if listing.status:
        conditions.append(items.c.status == listing.status)
    if listing.drafts_of is not None:
        conditions.append(
            or_(items.c.status == "published", items.c.author_id == listing.drafts_of)
        )
    if listing.condition is not None:
        conditions.append(listing.condition)
    sort_columns = [key.expr.label(f"sort_{n}") for n, key in enumerate(listing.keys)]
    window, bound, parameters = listing.window, None, {}
    # A ranked search keeps its match apart from the filter (the window checks it its way).
    matching = conditions if window is None else [*conditions, window.match]
    if window is not None:
        bound = window.bound or await _window_bound(conn, matching, window.size)
        parameters = window.parameters(bound)
    if window is None or bound == EVERYTHING:
        page_conditions = [*matching, listing.after] if listing.after is not None else matching
        query = (
            select(*_ITEM_COLUMNS, *sort_columns)
            .select_from(_ITEMS_WITH_COLLECTION)
            .where(*page_conditions)
            .order_by(*listing.order_by)
            .limit(listing.limit + 1)
            .offset(listing.offset)
        )
    else:
        query = _windowed(listing, conditions, sort_columns)
    fetched = (await conn.execute(query, parameters)).mappings().all()
    names = _ITEM_FIELDS
    rows = [Item(**{name: r[name] for name in names}) for r in fetched[: listing.limit]]
    more = len(fetched) > listing.limit
    last = (
        [fetched[listing.limit - 1][f"sort_{n}"] for n in range(len(listing.keys))]
        if more
        else None
    )
    total: int | None = None
    if listing.count_total:
        if listing.offset == 0 and listing.after is None and not more:
            total = len(rows)
        else:
            count = select(func.count()).select_from(items).where(*matching)
            total = int((await conn.execute(count)).scalar_one())
    return Page(rows, total, last, bound)


async def _window_bound(
    conn: AsyncConnection, conditions: Sequence[Any], size: int
) -> tuple[int, str]:
    """The created_at and id of the `size`-th newest match, or EVERYTHING if there are fewer."""
    query = (
        select(items.c.created_at, items.c.id)
        .where(*conditions)
        .order_by(items.c.created_at.desc(), items.c.id.desc())
        .offset(size - 1)
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return EVERYTHING if row is None else (int(row[0]), str(row[1]))


def _windowed(listing: Listing, filtered: list[Any], sort_columns: list[Any]) -> Any:
    """The page of a ranked search whose window is smaller than its matches (`filtered`: the
    listing's conditions but the search's own).

    The two parts pick ids and sort values only; the page's rows are read for the winners
    alone (a window's thousand rows carried through the sort with their documents cost
    several times the ranking).
    """
    window = listing.window
    enough = listing.offset + listing.limit + 1
    picked = [items.c.id.label("page_id"), *sort_columns]
    parts = []
    if not listing.past_window:
        member_conditions = [*filtered, window.match_in_window, window.member]
        if listing.after is not None:
            member_conditions.append(listing.after)
        members = select(*picked).where(*member_conditions).order_by(*listing.order_by)
        parts.append(members.limit(enough))
    rest_conditions = [*filtered, window.match, not_(window.member)]
    if listing.after_rest is not None:
        rest_conditions.append(listing.after_rest)
    # Outside the window every rank is the same: the newest-first index's order.
    rest = select(*picked).where(*rest_conditions).order_by(*listing.order_by[1:])
    parts.append(rest.limit(enough))
    # Each part in a subquery of its own: SQLite allows no ORDER BY inside a compound select.
    both = union_all(*(select(part.subquery()) for part in parts)).subquery()

    def order(table: Any) -> list[Any]:
        return [
            table.c[f"sort_{n}"].desc() if key.descending else table.c[f"sort_{n}"].asc()
            for n, key in enumerate(listing.keys)
        ]

    page = select(both).order_by(*order(both)).limit(listing.limit + 1).offset(listing.offset)
    winners = page.subquery()
    sorts = [winners.c[f"sort_{n}"] for n in range(len(listing.keys))]
    return (
        select(*_ITEM_COLUMNS, *sorts)
        .select_from(winners.join(_ITEMS_WITH_COLLECTION, items.c.id == winners.c.page_id))
        .order_by(*order(winners))
    )


_ITEM_FIELDS = tuple(Item.__dataclass_fields__)


async def item_refs(conn: AsyncConnection, ids: set[str]) -> dict[str, ItemRef]:
    """The items among `ids` that exist, in one query (per thousand ids)."""
    found: dict[str, ItemRef] = {}
    for chunk in _chunks(ids):
        query = (
            select(items.c.id, collections.c.name, items.c.status, items.c.author_id)
            .select_from(_ITEMS_WITH_COLLECTION)
            .where(items.c.id.in_(chunk))
        )
        found.update((row[0], ItemRef(*row)) for row in await conn.execute(query))
    return found


_IDS_PER_QUERY = 1000


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """`ids` in order, a thousand at a time: one bounded `IN (...)` each."""
    wanted = sorted(ids)
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        yield wanted[start : start + _IDS_PER_QUERY]


# Built once for the usual number of candidates (an expanding IN is compiled on every call).
_TAKEN_SLUGS = select(items.c.slug).where(
    items.c.collection_id == bindparam("collection_id"),
    items.c.slug.in_([bindparam(f"slug_{n}") for n in range(CANDIDATES)]),
)


async def taken_slugs(conn: AsyncConnection, collection_id: str, candidates: list[str]) -> set[str]:
    """Which of `candidates` are already used in the collection (one index lookup each)."""
    if len(candidates) == CANDIDATES:
        values = {f"slug_{n}": slug for n, slug in enumerate(candidates)}
        rows = await conn.execute(_TAKEN_SLUGS, {"collection_id": collection_id, **values})
    else:
        query = select(items.c.slug).where(
            items.c.collection_id == collection_id, items.c.slug.in_(candidates)
        )
        rows = await conn.execute(query)
    return set(rows.scalars().all())


async def taken_slugs_among(
    conn: AsyncConnection, collection_id: str, candidates: Iterable[str]
) -> set[str]:
    """Which of any number of `candidates` the collection already uses (a query per thousand)."""
    taken: set[str] = set()
    for chunk in _chunks(set(candidates)):
        query = select(items.c.slug).where(
            items.c.collection_id == collection_id, items.c.slug.in_(chunk)
        )
        taken.update((await conn.execute(query)).scalars())
    return taken


async def update_item(
    conn: AsyncConnection, id_: str, values: Mapping[str, Any], expected_version: int | None
) -> int:
    """Apply `values`; with `expected_version`, only if the item is still at it. Rows changed."""
    query = items.update().where(items.c.id == id_)
    if expected_version is not None:
        query = query.where(items.c.version == expected_version)
    try:
        result = await conn.execute(query.values(**values))
    except IntegrityError as exc:
        raise _item_conflict(exc) from None
    return result.rowcount


async def due_items(conn: AsyncConnection, now: int, limit: int, max_attempts: int) -> list[Item]:
    """Items with a scheduled change due by `now` (and not waiting to retry), locked for this
    transaction; rows another transaction holds are skipped, so two schedulers never take the
    same item (SQLite, one writer at a time, needs no lock)."""
    query = (
        select(*_ITEM_COLUMNS)
        .select_from(_ITEMS_WITH_COLLECTION)
        .where(
            or_(items.c.publish_at <= now, items.c.unpublish_at <= now),
            or_(items.c.schedule_retry_at.is_(None), items.c.schedule_retry_at <= now),
            items.c.schedule_attempts < max_attempts,
        )
        .limit(limit)
        .with_for_update(skip_locked=True, of=items)
    )
    return [_item(r) for r in (await conn.execute(query)).mappings()]


async def next_due(conn: AsyncConnection, max_attempts: int) -> int | None:
    """The earliest moment a scheduled change (or its retry) is due, if any is pending."""
    query = select(
        func.min(items.c.publish_at),
        func.min(items.c.unpublish_at),
        func.min(items.c.schedule_retry_at),
    ).where(
        or_(items.c.publish_at.is_not(None), items.c.unpublish_at.is_not(None)),
        items.c.schedule_attempts < max_attempts,
    )
    row = (await conn.execute(query)).one()
    moments = [m for m in row if m is not None]
    return min(moments) if moments else None


async def delete_item(conn: AsyncConnection, id_: str, expected_version: int | None = None) -> int:
    """Delete the item (with `expected_version`, only if it is still at it); rows deleted."""
    query = items.delete().where(items.c.id == id_)
    if expected_version is not None:
        query = query.where(items.c.version == expected_version)
    result = await conn.execute(query)
    return result.rowcount


# -- unique field values -------------------------------------------------------------------------
async def claim_unique_values(
    conn: AsyncConnection, collection_id: str, item_id: str, values: Mapping[str, Any]
) -> None:
    """Record the item's values of unique fields; `UniqueValueTaken` names the first field
    another item of the collection already holds the value of."""
    for field, value in values.items():
        row = {
            "collection_id": collection_id,
            "field": field,
            "value_key": value_key(value),
            "item_id": item_id,
        }
        try:
            await conn.execute(item_unique_values.insert().values(**row))
        except IntegrityError as exc:
            if violation(exc).kind == "unique":
                raise UniqueValueTaken(field) from None
            raise


async def release_unique_values(
    conn: AsyncConnection, item_id: str, fields: Iterable[str] | None = None
) -> None:
    """Forget the item's values of `fields` (all of them when None)."""
    query = item_unique_values.delete().where(item_unique_values.c.item_id == item_id)
    if fields is not None:
        query = query.where(item_unique_values.c.field.in_(sorted(fields)))
    await conn.execute(query)


async def release_unique_field(conn: AsyncConnection, collection_id: str, field: str) -> None:
    await conn.execute(
        item_unique_values.delete().where(
            item_unique_values.c.collection_id == collection_id,
            item_unique_values.c.field == field,
        )
    )


async def item_data(conn: AsyncConnection, collection_id: str) -> list[tuple[str, str]]:
    """(id, data as JSON text) of every item of a collection, for a schema change to check."""
    query = select(items.c.id, cast(items.c.data, Text)).where(
        items.c.collection_id == collection_id
    )
    return [(row[0], row[1]) for row in await conn.execute(query)]


async def rewrite_items(conn: AsyncConnection, rows: list[dict[str, Any]], updated_at: int) -> None:
    """Set the data of several items (`{"item_id", "data", "version", "search_text"}` each: a
    document, the version it is written as and its search text), in one batched statement."""
    if not rows:
        return
    query = (
        items.update()
        .where(items.c.id == bindparam("item_id"))
        .values(
            data=bindparam("data"),
            version=bindparam("version"),
            search_text=bindparam("search_text"),
            updated_at=updated_at,
        )
    )
    await conn.execute(query, rows)


async def insert_unique_values(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(item_unique_values.insert(), rows)


# -- media files used ------------------------------------------------------------------------------
async def media_of(conn: AsyncConnection, item_id: str) -> set[str]:
    """The media files the item uses (heron_content.media_refs)."""
    query = select(item_media.c.media_id).where(item_media.c.item_id == item_id)
    return {row[0] for row in await conn.execute(query)}


async def set_media(
    conn: AsyncConnection, item_id: str, used: set[str], before: set[str] | None = None
) -> None:
    """Record that the item uses `used` (it used `before`, or none when None: a new item)."""
    before = before or set()
    gone, new = before - used, used - before
    if gone:
        await conn.execute(
            item_media.delete().where(
                item_media.c.item_id == item_id, item_media.c.media_id.in_(sorted(gone))
            )
        )
    if new:
        await conn.execute(
            item_media.insert(), [{"item_id": item_id, "media_id": m} for m in sorted(new)]
        )


async def published_media(conn: AsyncConnection, ids: set[str]) -> set[str]:
    """Which of `ids` a published item uses."""
    found: set[str] = set()
    for chunk in _chunks(ids):
        query = (
            select(item_media.c.media_id)
            .join(items, items.c.id == item_media.c.item_id)
            .where(item_media.c.media_id.in_(chunk), items.c.status == "published")
            .distinct()
        )
        found.update(row[0] for row in await conn.execute(query))
    return found


# -- revisions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Revision:
    item_id: str
    version: int
    action: str
    """`created`, `updated` or `restored`."""
    status: str
    title: str
    slug: str
    data: str
    """The item's data at this version, as JSON text."""
    author_id: str
    """Who made the change (the service itself: the item's author)."""
    created_at: int


_REVISION_FIELDS = tuple(f.name for f in dataclasses.fields(Revision))


def revision_of(item: Item, action: str, writer: str) -> Revision:
    """The revision recording `item` as it was just written (at its `updated_at`)."""
    return Revision(
        item_id=item.id,
        version=item.version,
        action=action,
        status=item.status,
        title=item.title,
        slug=item.slug,
        data=item.data,
        author_id=writer,
        created_at=item.updated_at,
    )


_REVISION_COLUMNS = (
    *(c for c in item_revisions.c if c.name != "data"),
    cast(item_revisions.c.data, Text).label("data"),
)


_INSERT_REVISION = item_revisions.insert()


def _fields(revision: Revision) -> dict[str, Any]:
    """A revision's columns (its fields are plain values: no deep copy as in `asdict`)."""
    return {name: getattr(revision, name) for name in _REVISION_FIELDS}


async def insert_revision(conn: AsyncConnection, revision: Revision, data: Any, keep: int) -> None:
    """Record a revision (`data` as a document) and drop the item's revisions beyond the
    newest `keep`."""
    values = {**_fields(revision), "data": data}
    await conn.execute(_INSERT_REVISION, values)
    if revision.version > keep:  # versions count from 1: until then there is nothing to drop
        await conn.execute(
            item_revisions.delete().where(
                item_revisions.c.item_id == revision.item_id,
                item_revisions.c.version <= revision.version - keep,
            )
        )


async def insert_revisions(
    conn: AsyncConnection, revisions: list[tuple[Revision, Any]], keep: int
) -> None:
    """`insert_revision` for several items at once (each with its data as a document)."""
    if not revisions:
        return
    rows = [{**_fields(r), "data": data} for r, data in revisions]
    await conn.execute(_INSERT_REVISION, rows)
    stale = [
        {"stale_item": r.item_id, "below": r.version - keep}
        for r, _ in revisions
        if r.version > keep
    ]
    if stale:
        query = item_revisions.delete().where(
            item_revisions.c.item_id == bindparam("stale_item"),
            item_revisions.c.version <= bindparam("below"),
        )
        await conn.execute(query, stale)


async def list_revisions(
    conn: AsyncConnection, item_id: str, statuses: Iterable[str] | None, limit: int, offset: int
) -> tuple[list[Revision], int]:
    """The item's revisions, newest first, with their total; only of `statuses` if given."""
    conditions = [item_revisions.c.item_id == item_id]
    if statuses is not None:
        conditions.append(item_revisions.c.status.in_(sorted(statuses)))
    query = (
        select(*_REVISION_COLUMNS)
        .where(*conditions)
        .order_by(item_revisions.c.version.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = [Revision(**r) for r in (await conn.execute(query)).mappings()]
    count = select(func.count()).select_from(item_revisions).where(*conditions)
    return rows, int((await conn.execute(count)).scalar_one())


async def get_revision(conn: AsyncConnection, item_id: str, version: int) -> Revision | None:
    query = select(*_REVISION_COLUMNS).where(
        item_revisions.c.item_id == item_id, item_revisions.c.version == version
    )
    row = (await conn.execute(query)).mappings().first()
    return Revision(**row) if row is not None else None
