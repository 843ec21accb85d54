"""Media: uploads streamed to the media service, the library's metadata, and file delivery.

An upload's body is never held whole: the multipart parser (python-multipart, push-style) is
fed the body as it arrives, and each file's bytes go on to the media service over one
client-streaming call, chunk by chunk, with gRPC's flow control pacing the client. Limits are
enforced while streaming: the request's size (HERON_GATEWAY_MEDIA_MAX_REQUEST_BYTES, whatever
`Content-Length` says, chunked bodies included), its files and parts here; each file's size,
name and type in the media service, which stores nothing of a refused file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import quote

import grpc
from cms.common.v1.common_pb2 import PageRequest
from cms.media.v1 import media_pb2 as pb
from fastapi import APIRouter, Depends, Path, Query, Request
from heron_common.cache.codec import CachedResponse
from heron_common.cache.tags import tags_from
from heron_common.cache.types import Loaded
from heron_common.errors import (
    DomainError,
    ErrorDetail,
    Internal,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMediaType,
    from_rpc_error,
    from_trailer,
)
from heron_common.limits import DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE
from heron_common.names import FILENAME_PATTERN, FOLDER_PATTERN, file_path, is_folder
from heron_common.rpc.client import call, call_metadata
from heron_common.security.permissions import Principal
from pydantic import BaseModel, ConfigDict, Field
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.responses import Response, StreamingResponse

from heron_gateway.render import iso_from_ms, json_response, now_iso, page_meta
from heron_gateway.response_cache import asks_fresh, auto_format, page_key, until
from heron_gateway.schemas import ERROR_RESPONSES
from heron_gateway.security import Access
from heron_gateway.settings import GatewaySettings
from heron_gateway.upstreams import SettingsDep, Upstreams, UpstreamsDep

logger = logging.getLogger("heron.gateway.media")
router = APIRouter(tags=["media"], responses=ERROR_RESPONSES)

# Paths whose bodies are uploads: held to the media limit, not the JSON one (see app.py).
UPLOAD_PATHS = ("/api/media/upload",)

CanUpload = Annotated[Principal, Depends(Access("media.upload"))]
CanRead = Annotated[Principal, Depends(Access("media.read"))]
CanUpdate = Annotated[Principal, Depends(Access("media.update"))]
CanDelete = Annotated[Principal, Depends(Access("media.delete"))]

MAX_FIELD_BYTES = 16 * 1024
TAGS_PATTERN = r"^([^,]{0,100}(,[^,]{0,100}){0,49})?$"
_TAGS = re.compile(TAGS_PATTERN)
MAX_TEXT = 10_000
FolderParam = Annotated[
    str, Query(max_length=2100, pattern=FOLDER_PATTERN, description="A path like /a/b.")
]
TextParam = Annotated[str, Query(max_length=MAX_TEXT)]
TagsParam = Annotated[str, Query(pattern=TAGS_PATTERN, description="Comma-separated.")]


def _tags(value: str) -> list[str]:
    return [t for t in value.split(",") if t.strip()]


MAX_CHUNK = 1024 * 1024
# What browsers may render in place; everything else is offered as a download.
_INLINE = re.compile(
    r"^(image/(jpeg|png|gif|webp|avif)|video/|audio/|application/pdf$|text/plain$)"
)


def media_json(m: pb.Media) -> dict[str, Any]:
    return {
        "id": m.id,
        "filename": m.filename,
        "mime_type": m.mime_type,
        "size": m.size,
        "sha256": m.sha256,
        "width": m.width if m.HasField("width") else None,
        "height": m.height if m.HasField("height") else None,
        "folder": m.folder,
        "alt": m.alt,
        "caption": m.caption,
        "tags": list(m.tags),
        "uploaded_by": m.uploaded_by,
        "uploaded_at": iso_from_ms(m.uploaded_at),
        "updated_at": iso_from_ms(m.updated_at),
        "version": m.version,
        "url": file_path(m.id, m.filename),
    }


# -- streaming multipart -------------------------------------------------------------------


@dataclass
class _Part:
    name: str
    filename: str | None
    content_type: str


@dataclass
class _Multipart:
    """Pulls a multipart body through python-multipart's push parser, one event at a time."""

    body: AsyncIterator[bytes]
    boundary: bytes
    max_parts: int
    events: deque[tuple[str, Any]] = field(default_factory=deque)
    _field: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    parts: int = 0

    def __post_init__(self) -> None:
        def on_part_begin() -> None:
            self.parts += 1
            if self.parts > self.max_parts:
                raise _too_many(f"at most {self.max_parts} parts")
            self._headers = {}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self._field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self._value += data[start:end]

        def on_header_end() -> None:
            self._headers[bytes(self._field).lower()] = bytes(self._value)
            self._field, self._value = bytearray(), bytearray()

        def on_headers_finished() -> None:
            self.events.append(("part", self._part()))

        def on_part_data(data: bytes, start: int, end: int) -> None:
            self.events.append(("data", bytes(data[start:end])))

        def on_part_end() -> None:
            self.events.append(("end", None))

        self.parser = MultipartParser(
            self.boundary,
            {
                "on_part_begin": on_part_begin,
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
            },
        )

    def _part(self) -> _Part:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise _malformed("every part needs `Content-Disposition: form-data; name=...`")
        name = options[b"name"].decode("utf-8", "replace")
        filename = options.get(b"filename")
        content_type = self._headers.get(b"content-type", b"").decode("latin-1")
        return _Part(
            name, None if filename is None else filename.decode("utf-8", "replace"), content_type
        )

    async def next(self) -> tuple[str, Any] | None:
        while not self.events:
            chunk = await anext(self.body, None)
            if chunk is None:
                self.parser.finalize()
                return self.events.popleft() if self.events else None
            try:
                self.parser.write(chunk)
            except DomainError:
                raise
            except Exception as exc:  # the parser's own errors: the body is not multipart
                raise _malformed(str(exc)[:200]) from None
        return self.events.popleft()

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's bytes, up to its end."""
        while (event := await self.next()) is not None:
            kind, value = event
            if kind == "end":
                return
            if kind == "data" and value:
                yield value
        raise _malformed("the body ended inside a part")


def _malformed(message: str) -> InvalidArgument:
    return InvalidArgument(
        f"The upload is not valid multipart/form-data: {message}",
        [ErrorDetail("body", message)],
    )


def _too_many(message: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload has too many parts: {message}.", [ErrorDetail("body", message)]
    )


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body as it arrives; 413 the moment it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _request_too_large(limit)
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _request_too_large(limit)
        if chunk:
            yield chunk


def _request_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the {limit:,} bytes accepted.",
        [ErrorDetail("body", f"at most {limit} bytes")],
    )


# -- upload --------------------------------------------------------------------------------


@dataclass
class _Fields:
    folder: str = "/"
    alt: str = ""
    caption: str = ""
    tags: list[str] = field(default_factory=list)
    allow_duplicate: bool = False

    def set(self, name: str, value: str) -> None:
        if name == "folder":
            if not is_folder(value):
                raise _malformed("folder: a path like /a/b (see the API description)")
            self.folder = value
        elif name in ("alt", "caption"):
            if len(value) > MAX_TEXT:
                raise _malformed(f"{name}: at most {MAX_TEXT} characters")
            setattr(self, name, value)
        elif name == "tags":
            if not _TAGS.match(value):
                raise _malformed("tags: at most 50, comma-separated, of up to 100 characters")
            self.tags = _tags(value)
        elif name in ("allow_duplicate", "allowDuplicate"):
            flag = value.strip().lower()
            if flag not in ("true", "false"):
                raise _malformed("allow_duplicate is true or false")
            self.allow_duplicate = flag == "true"


async def _send_file(
    upstreams: Upstreams,
    settings: GatewaySettings,
    principal: Principal,
    start: pb.UploadStart,
    data: AsyncIterator[bytes],
) -> pb.UploadResult:
    """One file to the media service, chunk by chunk, while listening for its answer: a
    refusal stops the sending at once (the service keeps the call open until we cancel it)."""
    rpc = upstreams.media.Upload(
        timeout=settings.media_upload_timeout_seconds,
        metadata=call_metadata(principal.metadata()),
    )
    answer = asyncio.ensure_future(rpc.read())
    try:
        await rpc.write(pb.UploadChunk(start=start))
        async for chunk in data:
            for at in range(0, len(chunk), MAX_CHUNK):
                if answer.done():
                    break
                await rpc.write(pb.UploadChunk(data=chunk[at : at + MAX_CHUNK]))
            if answer.done():
                break
        else:
            await rpc.done_writing()
        reply = await answer
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    finally:
        if not answer.done():
            answer.cancel()
        rpc.cancel()  # done either way; with the body unfinished, the service discards it
    if not isinstance(reply, pb.UploadReply) or reply.WhichOneof("outcome") is None:
        raise Unavailable("The media service ended the upload without an answer; retry it.")
    if reply.WhichOneof("outcome") == "refusal":
        raise from_trailer(reply.refusal) or Internal("The upload was refused.")
    result: pb.UploadResult = reply.result
    return result


def _uploaded_json(result: pb.UploadResult) -> dict[str, Any]:
    body = media_json(result.media)
    if result.duplicate_of:
        body["meta"] = {"duplicate_of": result.duplicate_of}
    return body


MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    # The metadata is described as query parameters: in a form every field is
                    # text, so a described `"5"` would be a string and a number alike. The same
                    # fields sent as parts (as SonicJS clients do) apply to the files after them.
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "Larger than a limit, or too many parts or files"},
    415: {"description": "Not an allowed type, or not the type it was sent as"},
}


@router.post(
    "/api/media/upload",
    status_code=201,
    summary="Upload files (multipart/form-data)",
    openapi_extra=MULTIPART_BODY,
    responses=UPLOAD_RESPONSES,
)
@router.post(
    "/api/media/upload-multiple",
    status_code=201,
    summary="Upload files (multipart/form-data; the same as /api/media/upload)",
    openapi_extra=MULTIPART_BODY,
    responses=UPLOAD_RESPONSES,
)
async def upload(
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpload,
    folder: FolderParam = "/",
    alt: TextParam = "",
    caption: TextParam = "",
    tags: TagsParam = "",
    allow_duplicate: bool = False,
) -> Response:
    """One or more files (parts with a filename, under any field name: `file`, `files`,
    ...), with the metadata of the query. Parts `folder`, `alt`, `caption`, `tags`
    (comma-separated) and `allow_duplicate` override it for the files after them. A file whose
    bytes match an earlier file's is not stored again: its answer is the earlier file, with
    `meta.duplicate_of`."""
    fields = _Fields(folder, alt, caption, _tags(tags), allow_duplicate)
    return await _upload_multipart(request, upstreams, settings, principal, fields)


async def _upload_multipart(
    request: Request,
    upstreams: Upstreams,
    settings: GatewaySettings,
    principal: Principal,
    fields: _Fields,
) -> Response:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise UnsupportedMediaType(
            "Uploads are multipart/form-data (with a boundary), or a raw body sent with "
            "PUT /api/media/upload/{filename}.",
        )
    body = _Multipart(
        _limited(request, settings.media_max_request_bytes),
        options[b"boundary"],
        settings.media_max_parts,
    )
    made: list[dict[str, Any]] = []
    stored: list[str] = []  # stored by this request (not an earlier file it duplicates)
    try:
        await _read_parts(upstreams, settings, principal, body, fields, made, stored)
    except BaseException:
        # All or nothing: the files already stored by this request are taken back.
        # The answer waits for them (with the upload's own deadline: deleting from a slow
        # bucket may take longer than a read), so a client that saw the error finds none.
        for media_id in stored:
            try:
                await call(
                    upstreams.media.DiscardUpload,
                    pb.DeleteMediaRequest(id=media_id),
                    timeout=settings.media_upload_timeout_seconds,
                    metadata=principal.metadata(),
                )
            except DomainError as exc:
                logger.warning(
                    "could not take back a file of a failed upload",
                    extra={"media_id": media_id, "error": exc.message},
                )
        raise
    if not made:
        raise InvalidArgument(
            "The upload has no file: send it as a part with a filename (field `file`).",
            [ErrorDetail("file", "required")],
        )
    return json_response(
        {"data": made, "meta": {"count": len(made), "timestamp": now_iso()}}, status=201
    )


async def _read_parts(
    upstreams: Upstreams,
    settings: GatewaySettings,
    principal: Principal,
    body: _Multipart,
    fields: _Fields,
    made: list[dict[str, Any]],
    stored: list[str],
) -> None:
    while (event := await body.next()) is not None:
        kind, part = event
        if kind != "part":
            continue
        if part.filename is None:
            value = bytearray()
            async for chunk in body.data():
                value += chunk
                if len(value) > MAX_FIELD_BYTES:
                    raise _malformed(
                        f"the field {part.name[:40]!r} is over {MAX_FIELD_BYTES} bytes"
                    )
            fields.set(part.name, value.decode("utf-8", "replace"))
            continue
        if len(made) >= settings.media_max_files:
            raise _too_many(f"at most {settings.media_max_files} files")
        start = pb.UploadStart(
            filename=part.filename,
            claimed_type=part.content_type,
            folder=fields.folder,
            alt=fields.alt,
            caption=fields.caption,
            tags=fields.tags,
            allow_duplicate=fields.allow_duplicate,
        )
        result = await _send_file(upstreams, settings, principal, start, body.data())
        if result.media.id != result.duplicate_of:
            stored.append(result.media.id)
        made.append(_uploaded_json(result))


@router.put(
    "/api/media/upload/{filename}",
    status_code=201,
    summary="Upload one file (raw body)",
    responses=UPLOAD_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_raw(
    filename: Annotated[str, Path(max_length=255, pattern=FILENAME_PATTERN)],
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpload,
    folder: FolderParam = "/",
    alt: TextParam = "",
    caption: TextParam = "",
    tags: TagsParam = "",
    allow_duplicate: bool = False,
) -> Response:
    """The body is the file itself (`Content-Type` is its claimed type, checked against its
    bytes); for programs that do not speak multipart."""
    declared = request.headers.get("content-length", "")
    start = pb.UploadStart(
        filename=filename,
        claimed_type=request.headers.get("content-type", ""),
        folder=folder,
        alt=alt,
        caption=caption,
        tags=_tags(tags),
        declared_size=int(declared) if declared.isdigit() else 0,
        allow_duplicate=allow_duplicate,
    )
    body = _limited(request, settings.media_max_request_bytes)
    result = await _send_file(upstreams, settings, principal, start, body)
    return json_response({"data": _uploaded_json(result)}, status=201)


# -- library -------------------------------------------------------------------------------


@router.get("/api/media", summary="List media files")
async def list_media(
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanRead,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    cursor: Annotated[str, Query(max_length=1000)] = "",
    folder: Annotated[str, Query(max_length=2100, pattern=FOLDER_PATTERN)] = "",
    recursive: bool = False,
    type: Annotated[
        str, Query(max_length=255, description='A type ("image/png") or a family ("image/").')
    ] = "",
    uploaded_by: Annotated[str, Query(max_length=64)] = "",
    search: Annotated[str, Query(max_length=200)] = "",
    tag: Annotated[str, Query(max_length=100, description="Files that have this tag.")] = "",
    sort: Annotated[
        Literal["uploaded_at", "-uploaded_at", "filename", "-filename", "size", "-size"],
        Query(description="uploaded_at, filename or size; - for descending."),
    ] = "-uploaded_at",
    total: bool = False,
) -> Response:
    reply: pb.ListMediaResponse = await call(
        upstreams.media.ListMedia,
        pb.ListMediaRequest(
            page=PageRequest(limit=limit, offset=offset, cursor=cursor),
            folder=folder,
            recursive=recursive,
            mime_type=type,
            uploaded_by=uploaded_by,
            search=search,
            tag=tag,
            sort=sort,
            count=total,
        ),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    data = [media_json(m) for m in reply.media]
    return json_response({"data": data, "meta": page_meta(len(data), reply.page, limit, offset)})


@router.get("/api/media/{media_id:uuid}", summary="Get a media file's metadata")
async def get_media(
    media_id: uuid.UUID, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanRead
) -> Response:
    found: pb.Media = await call(
        upstreams.media.GetMedia,
        pb.GetMediaRequest(id=str(media_id)),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": media_json(found)})


class MediaUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str | None = Field(default=None, max_length=1024)
    folder: str | None = Field(default=None, max_length=1024)
    alt: str | None = Field(default=None, max_length=10_000)
    caption: str | None = Field(default=None, max_length=10_000)
    tags: list[str] | None = Field(default=None, max_length=50)
    version: int | None = Field(default=None, ge=1, description="Only while at this version.")


@router.patch("/api/media/{media_id:uuid}", summary="Change a media file's metadata")
async def update_media(
    media_id: uuid.UUID,
    body: MediaUpdate,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanUpdate,
) -> Response:
    request = pb.UpdateMediaRequest(id=str(media_id))
    for name in ("filename", "folder", "alt", "caption"):
        value = getattr(body, name)
        if value is not None:
            setattr(request, name, value)
    if body.tags is not None:
        request.tags.extend(body.tags)
        request.set_tags = True
    if body.version is not None:
        request.expected_version = body.version
    changed: pb.Media = await call(
        upstreams.media.UpdateMedia,
        request,
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": media_json(changed)})


@router.delete("/api/media/{media_id:uuid}", summary="Delete a media file (its bytes too)")
async def delete_media(
    media_id: uuid.UUID, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanDelete
) -> Response:
    await call(
        upstreams.media.DeleteMedia,
        pb.DeleteMediaRequest(id=str(media_id)),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"success": True})


MAX_BULK = 50


class BulkDelete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fileIds: list[uuid.UUID] = Field(  # SonicJS's name
        min_length=1, max_length=MAX_BULK, description=f"At most {MAX_BULK} files."
    )


class BulkMove(BulkDelete):
    folder: str = Field(max_length=2100, pattern=FOLDER_PATTERN, description="A path like /a/b.")


async def _each(ids: list[uuid.UUID], act: Callable[[str], Awaitable[object]]) -> dict[str, Any]:
    """SonicJS's bulk answer: each file's outcome, then a summary (one file's refusal does
    not stop the others)."""
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for media_id in dict.fromkeys(str(i) for i in ids):
        try:
            await act(media_id)
        except DomainError as exc:
            if exc.http_status >= 500:  # the service, not the file: the caller retries it all
                raise
            errors.append({"fileId": media_id, "error": str(exc), "code": exc.code})
        else:
            results.append({"fileId": media_id, "success": True})
    total = len(results) + len(errors)
    return {
        "success": not errors,
        "results": results,
        "errors": errors,
        "summary": {"total": total, "successful": len(results), "failed": len(errors)},
    }


@router.post("/api/media/bulk-delete", summary="Delete several media files")
async def bulk_delete(
    body: BulkDelete, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanDelete
) -> Response:
    """Each file is deleted on its own (its bytes and variants too), with the same
    permission as one delete; the answer lists what was deleted and what was refused."""

    async def delete(media_id: str) -> object:
        return await call(
            upstreams.media.DeleteMedia,
            pb.DeleteMediaRequest(id=media_id),
            timeout=settings.rpc_timeout_seconds,
            metadata=principal.metadata(),
        )

    return json_response(await _each(body.fileIds, delete))


@router.post("/api/media/bulk-move", summary="Move several media files to a folder")
async def bulk_move(
    body: BulkMove, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanUpdate
) -> Response:
    """Each file is moved on its own, with the same permission as one update."""

    async def move(media_id: str) -> object:
        return await call(
            upstreams.media.UpdateMedia,
            pb.UpdateMediaRequest(id=media_id, folder=body.folder),
            timeout=settings.rpc_timeout_seconds,
            metadata=principal.metadata(),
        )

    return json_response(await _each(body.fileIds, move))


# -- delivery ------------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """[start, end) of a single satisfiable range; None to send the whole file (no range, or
    several: RFC 9110 lets a server ignore them). ValueError when it cannot be satisfied."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            raise ValueError
        return max(0, size - n), size
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        raise ValueError
    return start, end


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266: an ASCII fallback and the UTF-8 name (RFC 8187)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename).strip() or "file"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _file_headers(m: pb.Media, principal: Principal) -> dict[str, str]:
    media_type = m.mime_type
    if media_type == "text/plain":
        media_type = "text/plain; charset=utf-8"
    inline = bool(_INLINE.match(m.mime_type))
    return {
        "content-type": media_type,
        "content-disposition": content_disposition(
            "inline" if inline else "attachment", m.filename
        ),
        "etag": f'"{m.sha256}"',
        "accept-ranges": "bytes",
        # A file's bytes never change under its id. (nosniff and a sandboxing CSP are added
        # by SecurityHeadersMiddleware to everything under /files/.)
        "cache-control": cache_control(principal),
    }


IMMUTABLE = "public, max-age=31536000, immutable"
PRIVATE_IMMUTABLE = "private, max-age=31536000, immutable"


def cache_control(principal: Principal) -> str:
    """Shared caches (a CDN) may keep what anonymous callers get: published files. What a
    signed-in caller reads may be a draft's file, for the caller's own cache only."""
    return IMMUTABLE if principal.anonymous else PRIVATE_IMMUTABLE


def _not_modified(request: Request, etag: str) -> bool:
    """The request's `If-None-Match` holds `etag` (or `*`)."""
    return request.headers.get("if-none-match", "") in (etag, f"W/{etag}", "*")


def _gone() -> NotFound:
    return NotFound("No such media file.", [ErrorDetail("id", "deleted meanwhile")])


_FILE_CONTENT = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


@router.get(
    "/files/{media_id:uuid}/{filename}",
    summary="Download a media file",
    responses={
        200: {"description": "The file", "content": _FILE_CONTENT},
        206: {"description": "The requested range of the file", "content": _FILE_CONTENT},
        304: {"description": "Not modified (If-None-Match)"},
        416: {"description": "The range is past the end of the file"},
    },
)
async def download(
    media_id: uuid.UUID,
    filename: str,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanRead,
    w: Annotated[int, Query(ge=1, le=10_000, description="A variant's width.")] = 0,
    h: Annotated[int, Query(ge=1, le=10_000, description="A variant's height.")] = 0,
    fit: Annotated[Literal["", "cover", "contain", "inside"], Query()] = "",
    format: Annotated[
        Literal["", "jpeg", "png", "webp", "avif", "auto"],
        Query(description="`auto`: AVIF or WebP when `Accept` takes it, else the original's."),
    ] = "",
    q: Annotated[int, Query(ge=1, le=100, description="A variant's quality.")] = 0,
    preset: Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")] = "",
) -> Response:
    """The file's bytes, with `ETag` (`If-None-Match` → 304) and single `Range` requests
    (206; 416 when the range is past the end). With `w`, `h`, `fit`, `format`, `q` or
    `preset`: a variant of an image, made on the first request for it and stored (sizes,
    qualities and presets are the media service's allowlist)."""
    if w or h or fit or format or q or preset:
        kind = auto_format(request.headers.get("accept", "")) if format == "auto" else format
        variant = pb.VariantRequest(
            preset=preset, width=w, height=h, fit=fit, format=kind, quality=q
        )
        return await _send_variant(request, upstreams, settings, principal, media_id, variant)
    wanted = request.headers.get("range")
    if not wanted:  # the whole file: one call, whose first message says what it is
        stream = _read_file(upstreams, settings, principal, pb.ReadFileRequest(id=str(media_id)))
        found = (await _heading(stream, "media")).media
        headers = _file_headers(found, principal)
        if _not_modified(request, headers["etag"]):
            stream.cancel()
            keep = ("etag", "cache-control", "content-disposition")
            return Response(status_code=304, headers={k: headers[k] for k in keep})
        return await _send_file_body(
            request, upstreams, settings, principal, stream, headers, found.size
        )
    found = await call(
        upstreams.media.GetMedia,
        pb.GetMediaRequest(id=str(media_id)),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    headers = _file_headers(found, principal)
    if _not_modified(request, headers["etag"]):
        keep = ("etag", "cache-control", "content-disposition")
        return Response(status_code=304, headers={k: headers[k] for k in keep})
    status, start, end = 200, 0, found.size
    if_range = request.headers.get("if-range")
    if if_range is None or if_range == headers["etag"]:
        try:
            chosen = _byte_range(wanted, found.size)
        except ValueError:
            return Response(
                status_code=416,
                headers={"content-range": f"bytes */{found.size}", "accept-ranges": "bytes"},
            )
        if chosen is not None:
            status, (start, end) = 206, chosen
            headers["content-range"] = f"bytes {start}-{end - 1}/{found.size}"
    stream = _read_file(
        upstreams,
        settings,
        principal,
        pb.ReadFileRequest(id=str(media_id), offset=start, length=end - start),
    )
    await _heading(stream, "media")
    headers["content-length"] = str(end - start)
    return StreamingResponse(_chunks(stream), status_code=status, headers=headers)


def _read_file(
    upstreams: Upstreams,
    settings: GatewaySettings,
    principal: Principal,
    request: pb.ReadFileRequest,
) -> Any:
    return upstreams.media.ReadFile(
        request,
        timeout=settings.media_upload_timeout_seconds,
        metadata=call_metadata(principal.metadata()),
    )


async def _heading(stream: Any, part: str) -> Any:
    """The next heading message of a ReadFile call (`media`, then `variant`)."""
    try:
        message: Any = await stream.read()
    except grpc.aio.AioRpcError as exc:
        stream.cancel()
        raise from_rpc_error(exc) from None
    if message is grpc.aio.EOF or message.WhichOneof("part") != part:
        stream.cancel()
        raise _gone()
    return message


async def _send_variant(
    request: Request,
    upstreams: Upstreams,
    settings: GatewaySettings,
    principal: Principal,
    media_id: uuid.UUID,
    variant: pb.VariantRequest,
) -> Response:
    stream = _read_file(
        upstreams, settings, principal, pb.ReadFileRequest(id=str(media_id), variant=variant)
    )
    original: pb.Media = (await _heading(stream, "media")).media
    made: pb.Variant = (await _heading(stream, "variant")).variant
    stem = original.filename.rsplit(".", 1)[0] or "file"
    extension = made.mime_type.split("/", 1)[1].replace("jpeg", "jpg")
    headers = {
        "content-type": made.mime_type,
        "content-disposition": content_disposition("inline", f"{stem}.{extension}"),
        "etag": f'"{made.sha256}"',
        "cache-control": cache_control(principal),
        "x-variant": made.spec,
    }
    if request.query_params.get("format") == "auto":
        headers["vary"] = "Accept"
    if _not_modified(request, headers["etag"]):
        stream.cancel()
        return Response(status_code=304, headers=headers)
    return await _send_file_body(
        request, upstreams, settings, principal, stream, headers, made.size
    )


async def _send_file_body(
    request: Request,
    upstreams: Upstreams,
    settings: GatewaySettings,
    principal: Principal,
    stream: Any,
    headers: dict[str, str],
    size: int,
) -> Response:
    """The whole of a file (or variant) whose heading messages were read: from the page cache
    when it is small enough and the media service named its cache tags (the file's, and for an
    anonymous reader what made it public), otherwise streamed."""
    pages = upstreams.pages
    tags = tags_from(await stream.initial_metadata())
    ttl = None
    if tags is not None:
        tags, ttl = until(tags, pages.options.ttl)
    if (
        tags is None
        or (ttl is not None and ttl <= 0)
        or size > settings.file_cache_max_bytes
        or not pages.enabled
        or asks_fresh(request.headers.get("cache-control", "").encode("latin-1"))
    ):
        headers["content-length"] = str(size)
        return StreamingResponse(_chunks(stream), headers=headers)
    kept = tuple((k.encode(), v.encode("latin-1")) for k, v in headers.items())

    async def load() -> Loaded[CachedResponse]:
        body = b"".join([chunk async for chunk in _chunks(stream)])
        if len(body) != size:  # cut short: never kept
            raise _gone_meanwhile()
        return Loaded(CachedResponse(200, kept, body), tags=tags, ttl=ttl)

    try:
        hit = await pages.get_or_load(page_key(principal, request.scope), load)
    finally:
        stream.cancel()  # another request's load answered: this call is not needed
    assert hit.value is not None
    response = Response(hit.value.body)
    response.raw_headers = [
        *hit.value.headers,
        (b"content-length", str(len(hit.value.body)).encode()),
        *hit.headers(),
    ]
    return response


def _gone_meanwhile() -> Unavailable:
    return Unavailable("The file could not be read in full; retry.")


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    """A file's bytes from a ReadFile call whose heading messages were read. (read() only: a
    call's iterator and read() may not be mixed.) A failure mid-file ends the body short of
    its Content-Length, which the client sees as a cut transfer."""
    try:
        while isinstance(chunk := await stream.read(), pb.FileChunk):
            if chunk.data:
                yield chunk.data
    except grpc.aio.AioRpcError:
        return
    finally:
        stream.cancel()
