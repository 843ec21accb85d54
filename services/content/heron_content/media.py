"""The content service's calls to the media service: whether the files a write's media fields
name exist (and are of a type the field accepts), and the files `include=` expands.

Calls carry the writer's or reader's own credentials, so the media service decides what they
may see: a file an anonymous reader may not see stays its id. A write that names no file
never calls; one that does fails with a 503 naming the media service while it is down (the
content service's other reads and writes go on).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from cms.common.v1 import common_pb2
from cms.media.v1 import media_pb2 as pb
from cms.media.v1 import media_pb2_grpc
from heron_common.errors import DeadlineExceeded, ErrorDetail, InvalidArgument, Unavailable
from heron_common.names import file_path
from heron_common.rpc.client import call
from heron_common.security.permissions import Principal

from heron_content.media_refs import MediaRef, accepts

logger = logging.getLogger("heron.content")

BATCH = 100
"""Files per ListMedia call (the media service's cap on `ids`)."""


class MediaFiles:
    def __init__(self, stub: media_pb2_grpc.MediaServiceAsyncStub, timeout: float) -> None:
        self.stub = stub
        self.timeout = timeout

    async def find(self, principal: Principal | None, ids: Iterable[str]) -> dict[str, pb.Media]:
        """The files of `ids` the principal may see, by id."""
        wanted = sorted(set(ids))
        found: dict[str, pb.Media] = {}
        metadata = principal.metadata() if principal is not None else ()
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            request = pb.ListMediaRequest(ids=chunk, page=common_pb2.PageRequest(limit=BATCH))
            try:
                page: pb.ListMediaResponse = await call(
                    self.stub.ListMedia, request, timeout=self.timeout, metadata=metadata
                )
            except (Unavailable, DeadlineExceeded) as exc:
                raise Unavailable(
                    "the media service is unavailable, so the media files could not be "
                    "looked up; retry shortly",
                    [ErrorDetail("media", str(exc))],
                ) from None
            found.update((m.id, m) for m in page.media)
        return found

    async def check(self, principal: Principal | None, refs: Sequence[MediaRef]) -> None:
        """Every file `refs` name exists, is one the writer may see, and is of a type its
        field accepts; a 400 naming each field that is not."""
        if not refs:
            return
        found = await self.find(principal, (r.media_id for r in refs))
        problems = []
        for ref in refs:
            media = found.get(ref.media_id)
            if media is None:
                problems.append(ErrorDetail(ref.path, f"no media file {ref.media_id!r}"))
            elif not accepts(ref.accept, media.mime_type):
                allowed = ", ".join(ref.accept)
                problems.append(
                    ErrorDetail(ref.path, f"a {media.mime_type} file; this field takes {allowed}")
                )
        if problems:
            raise InvalidArgument("the item data names media files it may not use", problems[:50])


def media_json(m: pb.Media) -> dict[str, Any]:
    """A file as an included media field shows it: what a page needs to show it."""
    return {
        "id": m.id,
        "url": file_path(m.id, m.filename),
        "filename": m.filename,
        "mime_type": m.mime_type,
        "size": m.size,
        "width": m.width if m.HasField("width") else None,
        "height": m.height if m.HasField("height") else None,
        "alt": m.alt,
        "caption": m.caption,
    }
