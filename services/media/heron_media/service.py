"""Media use cases: upload (streamed, checked, then made visible), read, list, update, delete,
and the reaper that removes what a crash left half-done."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import tempfile
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from heron_common import names
from heron_common.cache.tags import media_tags
from heron_common.db import Database
from heron_common.errors import (
    Conflict,
    ErrorDetail,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from heron_common.ids import is_id, new_id, now_ms
from heron_common.security.authz import deny
from heron_common.security.permissions import Principal

from heron_media import repository as repo
from heron_media.exif import strip_gps
from heron_media.hooks import Hooks
from heron_media.repository import Listing, Media, StoredVariant
from heron_media.settings import MediaSettings
from heron_media.sniff import HEAD_BYTES, canonical, sniff
from heron_media.storage import Storage, Writer, beside
from heron_media.variants import Spec, render
from heron_media.visibility import Visibility

logger = logging.getLogger("heron.media")

HEARTBEAT_SECONDS = 10.0
DISCARD_WINDOW_SECONDS = 600
MAX_TAGS = 50
MAX_TAG_LENGTH = 100
MAX_TEXT = 10_000
IMAGE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/avif": "AVIF",
}
# Claimed types that say nothing about the file.
_UNINFORMATIVE = {"", "application/octet-stream", "binary/octet-stream"}


def invalid(name: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{name}: {message}", [ErrorDetail(name, message)])


def clean_filename(raw: str, max_length: int) -> str:
    """The name as it is shown and offered for download; only its last path segment counts
    (`../../x.png` is `x.png`). Names a person could be fooled by, or that break headers, are
    refused (heron_common.names)."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    if len(name) > max_length:
        raise invalid("filename", f"at most {max_length} characters")
    if name in ("", ".", ".."):
        raise invalid("filename", "the file needs a name")
    if names.forbidden(name):
        raise invalid("filename", "must not contain control or invisible formatting characters")
    return unicodedata.normalize("NFC", name)


def clean_folder(raw: str) -> str:
    """`/`, or `/a/b`: up to 20 folder names of 1 to 100 characters, none starting with a dot
    (heron_common.names)."""
    if not names.is_folder(raw):
        raise invalid(
            "folder",
            "a path like /a/b: up to 20 folder names of 1 to 100 characters, no control "
            "characters or backslashes, none starting with a dot",
        )
    return "/" + "/".join(p for p in raw.split("/") if p)


def clean_tags(raw: list[str]) -> list[str]:
    tags = list(dict.fromkeys(t.strip() for t in raw if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in tags):
        raise invalid("tags", f"at most {MAX_TAGS} tags of {MAX_TAG_LENGTH} characters")
    return tags


def _text(name: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise invalid(name, f"at most {MAX_TEXT} characters")
    return value


@dataclass
class UploadStart:
    filename: str
    claimed_type: str = ""
    folder: str = "/"
    alt: str = ""
    caption: str = ""
    tags: list[str] = field(default_factory=list)
    declared_size: int = 0
    allow_duplicate: bool = False


@dataclass(frozen=True)
class Uploaded:
    media: Media
    duplicate_of: str = ""


@dataclass
class _Checked:
    mime_type: str
    lead: bytes = b""
    width: int | None = None
    height: int | None = None


TAIL_BYTES = 16
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def image_is_whole(mime_type: str, lead: bytes, tail: bytes, size: int) -> bool:
    """Whether an image's last bytes are where its format ends it: a file cut short (an
    interrupted copy, a crafted partial file) is refused rather than served half-grey. Checked
    on the first and last bytes alone, so memory stays flat whatever the size. (AVIF is a
    tree of boxes and is not checked here.)"""
    if mime_type == "image/png":
        return tail.endswith(_PNG_END)
    if mime_type == "image/jpeg":
        return tail.rstrip(b"\x00").endswith(b"\xff\xd9")  # EOI, maybe zero-padded
    if mime_type == "image/gif":
        return tail.rstrip(b"\x00").endswith(b";")  # the trailer
    if mime_type == "image/webp":
        # RIFF: the size after the first 8 bytes, padded to even.
        declared = int.from_bytes(lead[4:8], "little") + 8
        return size in (declared, declared + 1)
    return True


class MediaService:
    def __init__(
        self,
        database: Database,
        storage: Storage,
        settings: MediaSettings,
        hooks: Hooks,
        *,
        visibility: Visibility | None = None,
        changed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.db = database
        self.storage = storage
        self.settings = settings
        self.hooks = hooks
        self.visibility = visibility or Visibility(settings.public_files, None, 1.0)
        """Which files anonymous callers may read (heron_media.visibility)."""
        self.changed = changed
        """Called with a file's id after it changed or went, to drop cached copies of it."""
        self.allowed = frozenset(canonical(t) for t in settings.allowed_types)
        self._variant_threads = ThreadPoolExecutor(
            settings.variant_workers, thread_name_prefix="heron-media-variants"
        )
        self._making: dict[tuple[str, str], asyncio.Future[StoredVariant]] = {}

    # -- upload ----------------------------------------------------------------------------
    async def upload(
        self, principal: Principal, start: UploadStart, chunks: AsyncIterator[bytes]
    ) -> Uploaded:
        limit = self.settings.max_file_bytes
        filename = clean_filename(start.filename, self.settings.max_filename_length)
        folder = clean_folder(start.folder or "/")
        tags = clean_tags(start.tags)
        alt, caption = _text("alt", start.alt), _text("caption", start.caption)
        if start.declared_size > limit:
            raise _too_large(limit)
        await self.hooks.before_upload(principal, filename, start.claimed_type, folder)
        id_ = new_id()
        key = uuid.uuid4().hex
        async with self.db.transaction() as conn:
            await repo.begin_upload(
                conn, id_=id_, storage_key=key, uploaded_by=principal.user_id, now=now_ms()
            )

        async def on_multipart(upload_id: str) -> None:
            async with self.db.transaction() as conn:
                await repo.touch_upload(conn, id_, now_ms(), upload_id)

        writer = self.storage.writer(key, on_multipart)
        done = False
        try:
            digest = hashlib.sha256()
            size = 0
            head = bytearray()
            checked: _Checked | None = None
            beat = time.monotonic()
            tail = b""
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                tail = (tail + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]
                if checked is None:
                    head += chunk
                    if len(head) < HEAD_BYTES:
                        continue
                    checked = self._check(bytes(head), start.claimed_type)
                    chunk, head = self._scrubbed(checked, bytes(head)), bytearray()
                digest.update(chunk)  # of the bytes stored
                await writer.write(chunk)
                if time.monotonic() - beat > HEARTBEAT_SECONDS:
                    beat = time.monotonic()
                    async with self.db.transaction() as conn:
                        await repo.touch_upload(conn, id_, now_ms())
            if size == 0:
                raise invalid("file", "the file is empty")
            if checked is None:
                checked = self._check(bytes(head), start.claimed_type)
                stored = self._scrubbed(checked, bytes(head))
                digest.update(stored)
                await writer.write(stored)
            if not image_is_whole(checked.mime_type, checked.lead, tail, size):
                raise InvalidArgument(
                    "The image is cut short: its end is missing. Send the whole file.",
                    [ErrorDetail("file", "truncated image")],
                )
            sha = digest.hexdigest()
            if not start.allow_duplicate:
                async with self.db.read() as conn:
                    earlier = await repo.same_bytes(conn, sha, id_)
                if earlier is not None:
                    # Nothing new is kept: the `finally` below discards this upload.
                    return Uploaded(earlier, duplicate_of=earlier.id)
            await writer.commit()
            now = now_ms()
            values = {
                "filename": filename,
                "mime_type": checked.mime_type,
                "size": size,
                "sha256": sha,
                "width": checked.width,
                "height": checked.height,
                "folder": folder,
                "alt": alt,
                "caption": caption,
                "tags": tags,
                "search_text": repo.search_text(filename, alt, caption),
                "uploaded_at": now,
                "updated_at": now,
            }
            async with self.db.transaction() as conn:
                if not await repo.finish_upload(conn, id_, values):
                    raise Conflict("The upload took too long and was abandoned; send it again.")
                made = await repo.get_media(conn, id_)
                assert made is not None
                emitted = await self.hooks.after_upload(conn, principal, made)
            if emitted:
                self.hooks.committed()
            done = True
        finally:
            if not done:
                # A duplicate, or refused, failed or cut off: nothing of it may stay
                # (shielded: a cancelled call must still clean up).
                await asyncio.shield(self._discard(writer, id_, key))
        duplicate = ""
        if start.allow_duplicate:
            async with self.db.read() as conn:
                earlier = await repo.same_bytes(conn, made.sha256, made.id)
            duplicate = earlier.id if earlier is not None else ""
        logger.info("media uploaded", extra={"media_id": made.id, "size": made.size})
        return Uploaded(made, duplicate_of=duplicate)

    def _scrubbed(self, checked: _Checked, head: bytes) -> bytes:
        """The file's first bytes as they are stored: without the GPS position in its EXIF
        block, unless HERON_MEDIA_STRIP_GPS is off (heron_media.exif)."""
        if self.settings.strip_gps and checked.mime_type in IMAGE_FORMATS:
            return strip_gps(checked.mime_type, head)
        return head

    def _check(self, head: bytes, claimed: str) -> _Checked:
        """What the file is (from its first bytes), if it may be stored at all."""
        found = sniff(head)
        if found not in self.allowed:
            raise UnsupportedMediaType(
                f"Files of type {found} are not accepted.",
                [ErrorDetail("file", f"the file's contents are {found}, which is not allowed")],
            )
        said = canonical(claimed)
        if said not in _UNINFORMATIVE and said != found:
            raise UnsupportedMediaType(
                f"The file was sent as {said}, but its contents are {found}.",
                [ErrorDetail("file", f"the contents are {found}, not {said}")],
            )
        checked = _Checked(found, lead=head[:16])
        if found in IMAGE_FORMATS:
            checked.width, checked.height = self._image_size(head, found)
        return checked

    def _image_size(self, head: bytes, media_type: str) -> tuple[int, int]:
        """The image's dimensions from its header alone (nothing is decoded), within the pixel
        cap: a decompression bomb is refused before any of it is."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(head), formats=[IMAGE_FORMATS[media_type]]) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InvalidArgument(
                "The image is damaged or its header could not be read.",
                [ErrorDetail("file", str(exc)[:200] or "unreadable image header")],
            ) from None
        except Image.DecompressionBombError:
            width, height = 2**31, 1
        if width * height > self.settings.image_max_pixels:
            raise PayloadTooLarge(
                f"The image has {width * height:,} pixels; at most "
                f"{self.settings.image_max_pixels:,} are accepted.",
                [ErrorDetail("file", "too many pixels")],
            )
        return width, height

    async def _discard(self, writer: Writer, id_: str, key: str) -> None:
        try:
            await writer.abort()
            await self._forget(id_, key)
        except Exception:
            # The reaper finishes it: the row stays invisible until then.
            logger.exception("could not discard a failed upload", extra={"media_id": id_})

    async def _forget(self, id_: str, key: str) -> None:
        await self.storage.delete(key)
        async with self.db.transaction() as conn:
            await repo.forget(conn, id_)

    # -- reads -----------------------------------------------------------------------------
    async def get(self, media_id: str) -> Media:
        found = None
        if is_id(media_id):
            async with self.db.read() as conn:
                found = await repo.get_media(conn, media_id)
        if found is None:
            raise NotFound(
                "No such media file.", [ErrorDetail("id", f"no media {media_id[:80]!r}")]
            )
        return found

    async def readable(self, principal: Principal, media_id: str) -> tuple[Media, list[str]]:
        """The file, if `principal` may read it (an anonymous caller: only a published
        one; not found otherwise, so a private file's existence does not show), and the cache
        tags of that answer (the file's, and what decided that it is public)."""
        found = await self.get(media_id)
        shown, tags = await self.visibility.visible_with_tags(principal, [found.id])
        if not shown:
            raise NotFound(
                "No such media file.",
                [ErrorDetail("id", "no public media file with this id (sign in to see it)")],
            )
        own = media_tags([found.id])
        return found, [*own, *(t for t in tags if t not in own)]

    async def list_media(
        self, principal: Principal, listing: Listing
    ) -> tuple[list[Media], int | None, str]:
        """A page of the library. Anonymous callers who read only published files list
        those of a set of ids (as `include=` asks), never the whole library."""
        restricted = self.visibility.restricted(principal)
        if restricted and not listing.ids:
            raise Unauthenticated(
                "Sign in to browse the media library; anonymous callers read only the files "
                "published content uses."
            )
        async with self.db.read() as conn:
            rows, total, cursor = await repo.list_media(conn, listing)
        if restricted:
            shown = await self.visibility.visible(principal, [m.id for m in rows])
            rows = [m for m in rows if m.id in shown]
            total = None if total is None else len(rows)
        return rows, total, cursor

    def read(self, found: Media, offset: int, length: int) -> AsyncIterator[bytes]:
        """The bytes of `found` (as `readable` returned it) from `offset`, `length` of them
        (0: to the end)."""
        if offset < 0 or offset > found.size or length < 0:
            raise invalid("range", f"the file has {found.size} bytes")
        end = found.size if length == 0 else min(found.size, offset + length)
        return self.storage.read(found.storage_key, offset, end - offset)

    # -- variants --------------------------------------------------------------------------
    async def variant(self, found: Media, spec: Spec) -> StoredVariant:
        """The stored variant of `found` (as `get` returned it), made now if it is the first
        request for it. Concurrent first requests in this process make it once (the others
        wait for it); processes that race store the same bytes under the same key, and the
        first row wins."""
        async with self.db.read() as conn:
            stored = await repo.get_variant(conn, found.id, spec.name)
        if stored is not None:
            return stored
        key = (found.id, spec.name)
        flight = self._making.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._make_variant(found, spec))
            self._making[key] = flight
            flight.add_done_callback(lambda _: self._making.pop(key, None))
        return await asyncio.shield(flight)

    async def _make_variant(self, found: Media, spec: Spec) -> StoredVariant:
        async with self.db.read() as conn:
            # Made by a flight that ended between the caller's look and this one.
            stored = await repo.get_variant(conn, found.id, spec.name)
            if stored is not None:
                return stored
            made = await repo.count_variants(conn, found.id)
        if made >= self.settings.variants_per_file:
            raise invalid(
                "variant",
                f"this file has its {made} variants already; ask for one of them or a preset",
            )
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as original:
            async for chunk in self.storage.read(found.storage_key, 0, found.size):
                original.write(chunk)
            original.seek(0)
            started = time.perf_counter()
            try:
                rendered = await asyncio.get_running_loop().run_in_executor(
                    self._variant_threads,
                    render,
                    original,
                    found.mime_type,
                    spec,
                    self.settings.image_max_pixels,
                )
            except (OSError, SyntaxError, ValueError) as exc:
                if isinstance(exc, InvalidArgument):
                    raise
                raise InvalidArgument(
                    "The image could not be decoded to make a variant of it.",
                    [ErrorDetail("file", str(exc)[:200] or "undecodable image")],
                ) from None
        key = beside(found.storage_key, spec.name)
        writer = self.storage.writer(key, _no_multipart)
        try:
            await writer.write(rendered.data)
            await writer.commit()
        except BaseException:
            await asyncio.shield(writer.abort())
            raise
        stored = StoredVariant(
            media_id=found.id,
            spec=spec.name,
            storage_key=key,
            mime_type=spec.mime_type,
            size=len(rendered.data),
            width=rendered.width,
            height=rendered.height,
            sha256=rendered.sha256,
        )
        async with self.db.transaction() as conn:
            await repo.add_variant(conn, stored, now_ms())
        logger.info(
            "media variant made",
            extra={
                "media_id": found.id,
                "spec": spec.name,
                "size": stored.size,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return stored

    def read_variant(self, stored: StoredVariant) -> AsyncIterator[bytes]:
        return self.storage.read(stored.storage_key, 0, stored.size)

    def close(self) -> None:
        self._variant_threads.shutdown(wait=False, cancel_futures=True)

    # -- changes ---------------------------------------------------------------------------
    async def update(
        self,
        principal: Principal,
        media_id: str,
        *,
        filename: str | None = None,
        folder: str | None = None,
        alt: str | None = None,
        caption: str | None = None,
        tags: list[str] | None = None,
        expected_version: int | None = None,
    ) -> Media:
        current = await self.get(media_id)
        if not principal.may_on("media.update", current.uploaded_by):
            raise deny(principal, "only its uploader (or an editor) may change this file")
        if expected_version is not None and expected_version != current.version:
            raise Conflict(
                f"The file changed meanwhile (version {current.version}, not "
                f"{expected_version}); read it again."
            )
        name = (
            clean_filename(filename, self.settings.max_filename_length)
            if filename is not None
            else current.filename
        )
        new_alt = _text("alt", alt) if alt is not None else current.alt
        new_caption = _text("caption", caption) if caption is not None else current.caption
        values = {
            "filename": name,
            "folder": clean_folder(folder) if folder is not None else current.folder,
            "alt": new_alt,
            "caption": new_caption,
            "tags": clean_tags(tags) if tags is not None else list(current.tags),
            "search_text": repo.search_text(name, new_alt, new_caption),
            "updated_at": now_ms(),
        }
        async with self.db.transaction() as conn:
            if not await repo.update_media(conn, media_id, values, current.version):
                raise Conflict("The file changed meanwhile; read it again.")
            changed = await repo.get_media(conn, media_id)
        await self._changed(media_id)
        if changed is None:
            raise NotFound("No such media file.", [ErrorDetail("id", "deleted meanwhile")])
        return changed

    async def delete(self, principal: Principal, media_id: str) -> None:
        current = await self.get(media_id)
        if not principal.may_on("media.delete", current.uploaded_by):
            raise deny(principal, "only its uploader (or an editor) may delete this file")
        await self._delete(principal, current)

    async def discard_recent(self, principal: Principal, media_id: str) -> None:
        """Undo the caller's own upload of the last few minutes (a failed multi-file upload)."""
        current = await self.get(media_id)
        recent = now_ms() - current.uploaded_at < DISCARD_WINDOW_SECONDS * 1000
        if principal.anonymous or current.uploaded_by != principal.user_id or not recent:
            raise deny(principal, "only a file you uploaded in the last minutes can be taken back")
        await self._delete(principal, current)

    async def _delete(self, principal: Principal, current: Media) -> None:
        media_id = current.id
        async with self.db.transaction() as conn:
            hidden = await repo.hide_for_delete(conn, media_id, now_ms())
            emitted = hidden is not None and await self.hooks.after_delete(conn, principal, current)
        if hidden is None:
            raise NotFound("No such media file.", [ErrorDetail("id", "deleted meanwhile")])
        if emitted:
            self.hooks.committed()
        await self._changed(media_id)  # hidden now: no cache may still serve it
        await self.storage.delete(hidden.storage_key, hidden.multipart_id)
        async with self.db.transaction() as conn:
            await repo.forget(conn, media_id)
        logger.info("media deleted", extra={"media_id": media_id})

    async def _changed(self, media_id: str) -> None:
        if self.changed is None:
            return
        try:
            await self.changed(media_id)
        except Exception:  # the change stands; caches keep the copy at most their TTL
            logger.exception("dropping cached copies failed", extra={"media_id": media_id})

    # -- the reaper ------------------------------------------------------------------------
    async def reap(self) -> int:
        """Remove uploads nobody finished and deletes left half-done; how many."""
        older_than = now_ms() - int(self.settings.stale_upload_seconds * 1000)
        async with self.db.read() as conn:
            found = await repo.stale(conn, older_than)
        for entry in found:
            await self.storage.delete(entry.storage_key, entry.multipart_id)
            async with self.db.transaction() as conn:
                await repo.forget(conn, entry.id)
        if found:
            logger.info("abandoned uploads and deletes cleaned up", extra={"count": len(found)})
        return len(found)

    async def reap_forever(self, interval: float = 60.0) -> None:
        while True:
            try:
                await self.reap()
            except Exception:
                logger.exception("the media reaper failed; it tries again")
            await asyncio.sleep(interval)


async def _no_multipart(upload_id: str) -> None:
    """A variant is written in one piece: it never becomes a multipart upload."""


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than the {limit:,} bytes accepted.",
        [ErrorDetail("file", f"at most {limit} bytes")],
    )
