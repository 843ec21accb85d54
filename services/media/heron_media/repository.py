"""Media queries (SQLAlchemy Core on the service's own database)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from heron_common.errors import ErrorDetail, InvalidArgument
from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_media.models import DELETING, READY, UPLOADING, media, variants


@dataclass(frozen=True, slots=True)
class Media:
    id: str
    filename: str
    mime_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    folder: str
    alt: str
    caption: str
    tags: tuple[str, ...]
    uploaded_by: str
    uploaded_at: int
    updated_at: int
    version: int
    storage_key: str


@dataclass(frozen=True, slots=True)
class Stale:
    """An upload or delete that never finished: what a reaper removes."""

    id: str
    storage_key: str
    multipart_id: str | None


def _media(row: RowMapping) -> Media:
    return Media(
        id=row["id"],
        filename=row["filename"],
        mime_type=row["mime_type"],
        size=row["size"],
        sha256=row["sha256"],
        width=row["width"],
        height=row["height"],
        folder=row["folder"],
        alt=row["alt"],
        caption=row["caption"],
        tags=tuple(row["tags"] or ()),
        uploaded_by=row["uploaded_by"],
        uploaded_at=row["uploaded_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        storage_key=row["storage_key"],
    )


def search_text(filename: str, alt: str, caption: str) -> str:
    return " ".join((filename, alt, caption)).lower()


async def begin_upload(
    conn: AsyncConnection, *, id_: str, storage_key: str, uploaded_by: str, now: int
) -> None:
    """The row of an upload in progress: invisible until `finish_upload`."""
    await conn.execute(
        media.insert().values(
            id=id_,
            filename="",
            mime_type="",
            size=0,
            sha256="",
            folder="/",
            alt="",
            caption="",
            tags=[],
            search_text="",
            uploaded_by=uploaded_by,
            uploaded_at=now,
            updated_at=now,
            version=1,
            storage_key=storage_key,
            state=UPLOADING,
            heartbeat_at=now,
        )
    )


async def touch_upload(
    conn: AsyncConnection, id_: str, now: int, multipart_id: str | None = None
) -> None:
    values: dict[str, Any] = {"heartbeat_at": now}
    if multipart_id is not None:
        values["multipart_id"] = multipart_id
    await conn.execute(
        update(media).where(media.c.id == id_, media.c.state == UPLOADING).values(**values)
    )


async def finish_upload(conn: AsyncConnection, id_: str, values: Mapping[str, Any]) -> bool:
    """Make the upload visible with its metadata; False if it was reaped meanwhile."""
    done = await conn.execute(
        update(media)
        .where(media.c.id == id_, media.c.state == UPLOADING)
        .values(**values, state=READY, multipart_id=None)
    )
    return bool(done.rowcount)


async def forget(conn: AsyncConnection, id_: str) -> None:
    """Remove the file's row and its variants' (their objects are gone already)."""
    await conn.execute(delete(variants).where(variants.c.media_id == id_))
    await conn.execute(delete(media).where(media.c.id == id_))


@dataclass(frozen=True, slots=True)
class StoredVariant:
    media_id: str
    spec: str
    storage_key: str
    mime_type: str
    size: int
    width: int
    height: int
    sha256: str


async def get_variant(conn: AsyncConnection, media_id: str, spec: str) -> StoredVariant | None:
    row = (
        (
            await conn.execute(
                select(variants).where(variants.c.media_id == media_id, variants.c.spec == spec)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return StoredVariant(**{k: row[k] for k in StoredVariant.__slots__})


async def count_variants(conn: AsyncConnection, media_id: str) -> int:
    found = await conn.scalar(
        select(func.count()).select_from(variants).where(variants.c.media_id == media_id)
    )
    return int(found or 0)


async def add_variant(conn: AsyncConnection, made: StoredVariant, now: int) -> None:
    """Record a stored variant; another process that made the same one first wins (its object
    has the same key, and the same bytes)."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(variants).values(
                    **{k: getattr(made, k) for k in StoredVariant.__slots__}, created_at=now
                )
            )
    except IntegrityError:
        pass


async def get_media(conn: AsyncConnection, id_: str) -> Media | None:
    row = (
        (await conn.execute(select(media).where(media.c.id == id_, media.c.state == READY)))
        .mappings()
        .first()
    )
    return _media(row) if row is not None else None


async def same_bytes(conn: AsyncConnection, sha256: str, other_than: str) -> Media | None:
    """The oldest visible file with these bytes, other than `other_than`."""
    query = (
        select(media)
        .where(media.c.sha256 == sha256, media.c.state == READY, media.c.id != other_than)
        .order_by(media.c.uploaded_at, media.c.id)
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    return _media(row) if row is not None else None


async def update_media(
    conn: AsyncConnection, id_: str, values: Mapping[str, Any], expected_version: int
) -> bool:
    done = await conn.execute(
        update(media)
        .where(media.c.id == id_, media.c.state == READY, media.c.version == expected_version)
        .values(**values, version=expected_version + 1)
    )
    return bool(done.rowcount)


async def hide_for_delete(conn: AsyncConnection, id_: str, now: int) -> Stale | None:
    """Hide a visible file (its object goes next, then its row); None if there is none."""
    row = (
        (
            await conn.execute(
                select(media.c.id, media.c.storage_key, media.c.multipart_id).where(
                    media.c.id == id_, media.c.state == READY
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    await conn.execute(
        update(media).where(media.c.id == id_).values(state=DELETING, heartbeat_at=now)
    )
    return Stale(row["id"], row["storage_key"], row["multipart_id"])


async def stale(conn: AsyncConnection, older_than: int, limit: int = 100) -> list[Stale]:
    """Uploads unheard of since `older_than`, and deletes left half-done."""
    query = (
        select(media.c.id, media.c.storage_key, media.c.multipart_id)
        .where(
            or_(
                and_(media.c.state == UPLOADING, media.c.heartbeat_at < older_than),
                media.c.state == DELETING,
            )
        )
        .limit(limit)
    )
    return [
        Stale(r["id"], r["storage_key"], r["multipart_id"])
        for r in (await conn.execute(query)).mappings()
    ]


# -- listing -------------------------------------------------------------------------------

SORTS = {"uploaded_at": media.c.uploaded_at, "filename": media.c.filename, "size": media.c.size}


@dataclass(frozen=True)
class Listing:
    limit: int
    offset: int = 0
    cursor: str = ""
    folder: str = ""
    recursive: bool = False
    mime_type: str = ""
    uploaded_by: str = ""
    search: str = ""
    tag: str = ""
    sort: str = "-uploaded_at"
    count: bool = False
    ids: tuple[str, ...] = ()
    """Only these files (empty: no such filter)."""


def _invalid(name: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{name}: {message}", [ErrorDetail(name, message)])


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _has_tag(dialect: str, tag: str) -> Any:
    """The file's tags include `tag` (a JSON array: containment on PostgreSQL's JSONB)."""
    if dialect == "postgresql":
        return text("media.tags @> CAST(:tag AS jsonb)").bindparams(
            tag=orjson.dumps([tag]).decode()
        )
    return text(
        "EXISTS (SELECT 1 FROM json_each(media.tags) WHERE json_each.value = :tag)"
    ).bindparams(tag=tag)


def _conditions(listing: Listing, dialect: str) -> list[Any]:
    conditions: list[Any] = [media.c.state == READY]
    if listing.folder:
        if listing.recursive and listing.folder != "/":
            conditions.append(
                or_(
                    media.c.folder == listing.folder,
                    media.c.folder.like(_like(listing.folder) + "/%", escape="\\"),
                )
            )
        elif not listing.recursive:
            conditions.append(media.c.folder == listing.folder)
    if listing.mime_type:
        if listing.mime_type.endswith("/"):
            conditions.append(media.c.mime_type.like(_like(listing.mime_type) + "%", escape="\\"))
        else:
            conditions.append(media.c.mime_type == listing.mime_type)
    if listing.uploaded_by:
        conditions.append(media.c.uploaded_by == listing.uploaded_by)
    if listing.tag:
        conditions.append(_has_tag(dialect, listing.tag))
    for word in listing.search.lower().split()[:10]:
        conditions.append(media.c.search_text.like(f"%{_like(word)}%", escape="\\"))
    if listing.ids:
        conditions.append(media.c.id.in_(listing.ids))
    return conditions


def _encode_cursor(sort: str, value: Any, id_: str) -> str:
    raw = orjson.dumps({"s": sort, "k": [value, id_]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, id_ = doc["k"]
        if doc["s"] != sort or not isinstance(id_, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise _invalid(
            "cursor", "not a cursor of this list and sort; start from the first page"
        ) from None
    return value, id_


async def list_media(
    conn: AsyncConnection, listing: Listing
) -> tuple[list[Media], int | None, str]:
    """A page of visible files, the total when counted, and the next page's cursor."""
    descending = listing.sort.startswith("-")
    column = SORTS[listing.sort.lstrip("-")]
    conditions = _conditions(listing, conn.dialect.name)
    total = None
    if listing.count:
        total = (
            await conn.execute(select(func.count()).select_from(media).where(*conditions))
        ).scalar_one()
    page = list(conditions)
    if listing.cursor:
        value, after = _decode_cursor(listing.cursor, listing.sort)
        if descending:
            page.append(or_(column < value, and_(column == value, media.c.id < after)))
        else:
            page.append(or_(column > value, and_(column == value, media.c.id > after)))
    order = [column.desc(), media.c.id.desc()] if descending else [column, media.c.id]
    query = select(media).where(*page).order_by(*order).limit(listing.limit + 1)
    if listing.offset and not listing.cursor:
        query = query.offset(listing.offset)
    rows = [_media(r) for r in (await conn.execute(query)).mappings()]
    more = len(rows) > listing.limit
    rows = rows[: listing.limit]
    cursor = ""
    if more and rows:
        last = rows[-1]
        cursor = _encode_cursor(listing.sort, getattr(last, listing.sort.lstrip("-")), last.id)
    return rows, total, cursor
