"""Which files an anonymous caller may read.

Signed-in callers with `media.read` read every file. Anonymous callers (the `public` role's
`media.read`) read only the files published content uses, a media field's or a link in its
text (`HERON_MEDIA_PUBLIC_FILES=published`, the default): a file uploaded for a draft stays
private until the draft is published, and private again once it is unpublished. The content
service knows which files those are (heron_content.media_refs); it is asked on each anonymous
read the gateway's cache does not answer. `HERON_MEDIA_PUBLIC_FILES=all` makes every file
public, as SonicJS serves them.

Files and the gateway's copies of them carry the `media:<id>` tag: the content service's
writes that change whether a file is published, and this service's changes of the file,
invalidate it (over Redis; without it the gateway drops its pages after each write it
forwards).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from cms.content.v1 import content_pb2 as content_pb
from cms.content.v1 import content_pb2_grpc
from heron_common.cache.tags import PUBLIC_MEDIA_TAG
from heron_common.errors import DeadlineExceeded, ErrorDetail, PermissionDenied, Unavailable
from heron_common.rpc.client import call_with_tags
from heron_common.security.permissions import Principal


class Visibility:
    def __init__(
        self,
        policy: Literal["published", "all"],
        content: content_pb2_grpc.ContentServiceAsyncStub | None,
        timeout: float,
    ) -> None:
        self.policy = policy
        self.content = content
        self.timeout = timeout

    def restricted(self, principal: Principal) -> bool:
        """Whether `principal` reads only published content's files."""
        return principal.anonymous and self.policy == "published"

    async def visible(self, principal: Principal, ids: Iterable[str]) -> set[str]:
        """Which of `ids` the principal may read."""
        return (await self.visible_with_tags(principal, ids))[0]

    async def visible_with_tags(
        self, principal: Principal, ids: Iterable[str]
    ) -> tuple[set[str], list[str]]:
        """Which of `ids` the principal may read, and the cache tags of that answer (the
        content service's, for a restricted caller: a scheduled change's moment too)."""
        wanted = set(ids)
        if not wanted or not self.restricted(principal):
            return wanted, []
        if self.content is None:
            return set(), []
        try:
            # The caller's own (anonymous) rights: what the public role may read of content.
            answer, tags = await call_with_tags(
                self.content.PublishedMedia,
                content_pb.PublishedMediaRequest(ids=sorted(wanted)),
                timeout=self.timeout,
            )
        except PermissionDenied:  # the public role reads no content: no file is public
            return set(), [PUBLIC_MEDIA_TAG]
        except (Unavailable, DeadlineExceeded) as exc:
            raise Unavailable(
                "the content service is unavailable, so whether this file is public could "
                "not be checked; retry shortly (signed-in readers are not affected)",
                [ErrorDetail("id", str(exc))],
            ) from None
        return set(answer.ids) & wanted, [PUBLIC_MEDIA_TAG, *(tags or ())]
