"""gRPC servicer: protobuf messages ⇄ media use cases, nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from cms.common.v1 import common_pb2
from cms.media.v1 import media_pb2 as pb
from cms.media.v1 import media_pb2_grpc
from heron_common.cache.tags import tags_metadata
from heron_common.errors import DomainError, ErrorDetail, InvalidArgument
from heron_common.ids import is_id
from heron_common.rpc.paging import page_bounds
from heron_common.security.authz import PUBLIC, current_principal

from heron_media.repository import SORTS, Listing, Media, StoredVariant
from heron_media.service import MediaService, Uploaded, UploadStart, clean_folder
from heron_media.variants import spec_of

Context = grpc.aio.ServicerContext[Any, Any]
REFUSAL_DRAIN_SECONDS = 30.0

# What each method needs; ownership (`:own`) is checked by the service.
POLICY: dict[str, str] = {
    "Upload": "media.upload",
    "GetMedia": "media.read",
    "ListMedia": "media.read",
    "UpdateMedia": "media.update",
    "DeleteMedia": "media.delete",
    "DiscardUpload": "media.upload",
    "ReadFile": "media.read",
}
assert PUBLIC not in POLICY.values()


def media_message(m: Media) -> pb.Media:
    message = pb.Media(
        id=m.id,
        filename=m.filename,
        mime_type=m.mime_type,
        size=m.size,
        sha256=m.sha256,
        folder=m.folder,
        alt=m.alt,
        caption=m.caption,
        tags=list(m.tags),
        uploaded_by=m.uploaded_by,
        uploaded_at=m.uploaded_at,
        updated_at=m.updated_at,
        version=m.version,
    )
    if m.width is not None and m.height is not None:
        message.width, message.height = m.width, m.height
    return message


def _invalid(name: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{name}: {message}", [ErrorDetail(name, message)])


class MediaServicer(media_pb2_grpc.MediaServiceServicer):
    def __init__(self, service: MediaService) -> None:
        self.service = service

    async def Upload(
        self, requests: AsyncIterator[pb.UploadChunk], context: Context
    ) -> AsyncIterator[pb.UploadReply]:
        try:
            made = await self._upload(requests)
        except DomainError as exc:
            yield pb.UploadReply(refusal=exc.to_trailer())
            # The client stops sending and cancels once it reads the refusal; until then,
            # what it still sends is dropped (within a bound, so a client that never stops
            # cannot hold the call open).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(REFUSAL_DRAIN_SECONDS):
                    async for _ in requests:
                        pass
            return
        yield pb.UploadReply(
            result=pb.UploadResult(media=media_message(made.media), duplicate_of=made.duplicate_of)
        )

    async def _upload(self, requests: AsyncIterator[pb.UploadChunk]) -> Uploaded:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("part") != "start":
            raise _invalid("start", "the first message of an upload names the file")
        s = first.start

        async def chunks() -> AsyncIterator[bytes]:
            async for message in requests:
                if message.WhichOneof("part") != "data":
                    raise _invalid("data", "only the first message names the file")
                if message.data:
                    yield message.data

        start = UploadStart(
            filename=s.filename,
            claimed_type=s.claimed_type,
            folder=s.folder or "/",
            alt=s.alt,
            caption=s.caption,
            tags=list(s.tags),
            declared_size=s.declared_size,
            allow_duplicate=s.allow_duplicate,
        )
        return await self.service.upload(current_principal(), start, chunks())

    async def GetMedia(self, request: pb.GetMediaRequest, context: Context) -> pb.Media:
        found, tags = await self.service.readable(current_principal(), request.id)
        context.set_trailing_metadata(tags_metadata(tags))
        return media_message(found)

    async def ListMedia(
        self, request: pb.ListMediaRequest, context: Context
    ) -> pb.ListMediaResponse:
        page = page_bounds(request.page)
        sort = request.sort or "-uploaded_at"
        if sort.lstrip("-") not in SORTS:
            raise _invalid("sort", f"one of {', '.join(sorted(SORTS))} (with - for descending)")
        listing = Listing(
            limit=page.limit,
            offset=page.offset,
            cursor=request.page.cursor,
            folder=clean_folder(request.folder) if request.folder else "",
            recursive=request.recursive,
            mime_type=request.mime_type.strip().lower(),
            uploaded_by=request.uploaded_by,
            search=request.search[:200],
            tag=request.tag.strip()[:100],
            sort=sort,
            count=request.count,
            ids=_ids(request.ids),
        )
        rows, total, cursor = await self.service.list_media(current_principal(), listing)
        info = common_pb2.PageInfo(next_cursor=cursor)
        if total is not None:
            info.total = total
        return pb.ListMediaResponse(media=[media_message(m) for m in rows], page=info)

    async def UpdateMedia(self, request: pb.UpdateMediaRequest, context: Context) -> pb.Media:
        changed = await self.service.update(
            current_principal(),
            request.id,
            filename=request.filename if request.HasField("filename") else None,
            folder=request.folder if request.HasField("folder") else None,
            alt=request.alt if request.HasField("alt") else None,
            caption=request.caption if request.HasField("caption") else None,
            tags=list(request.tags) if request.set_tags else None,
            expected_version=(
                request.expected_version if request.HasField("expected_version") else None
            ),
        )
        return media_message(changed)

    async def DeleteMedia(
        self, request: pb.DeleteMediaRequest, context: Context
    ) -> pb.DeleteMediaResponse:
        await self.service.delete(current_principal(), request.id)
        return pb.DeleteMediaResponse()

    async def DiscardUpload(
        self, request: pb.DeleteMediaRequest, context: Context
    ) -> pb.DeleteMediaResponse:
        await self.service.discard_recent(current_principal(), request.id)
        return pb.DeleteMediaResponse()

    async def ReadFile(
        self, request: pb.ReadFileRequest, context: Context
    ) -> AsyncIterator[pb.FileChunk]:
        original, tags = await self.service.readable(current_principal(), request.id)
        # Before the file: the gateway decides from them whether it may keep a copy.
        await context.send_initial_metadata(tags_metadata(tags))
        if request.HasField("variant"):
            v = request.variant
            spec = spec_of(
                self.service.settings,
                original.mime_type,
                preset=v.preset,
                width=v.width,
                height=v.height,
                fit=v.fit,
                format=v.format,
                quality=v.quality,
            )
            stored = await self.service.variant(original, spec)
            yield pb.FileChunk(media=media_message(original))
            yield pb.FileChunk(variant=variant_message(stored))
            data = self.service.read_variant(stored)
        else:
            data = self.service.read(original, request.offset, request.length)
            yield pb.FileChunk(media=media_message(original))
        async for chunk in data:
            yield pb.FileChunk(data=chunk)


MAX_IDS = 100


def _ids(ids: Sequence[str]) -> tuple[str, ...]:
    if len(ids) > MAX_IDS:
        raise _invalid("ids", f"at most {MAX_IDS} at once")
    bad = [i for i in ids if not is_id(i)]
    if bad:
        raise _invalid("ids", f"{bad[0][:80]!r} is not a media id")
    return tuple(sorted(set(ids)))


def variant_message(v: StoredVariant) -> pb.Variant:
    return pb.Variant(
        spec=v.spec,
        mime_type=v.mime_type,
        size=v.size,
        width=v.width,
        height=v.height,
        sha256=v.sha256,
    )
