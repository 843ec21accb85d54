"""The media hooks (`media:beforeUpload`, `media:afterUpload`, `media:afterDelete`).

They are fired through the plugins service once it exists; until then this is the one place
where that call goes, and every hook is a no-op. `before_upload` may refuse an upload by
raising a `DomainError` (the client receives it), before any byte is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from heron_common.security.permissions import Principal

if TYPE_CHECKING:
    from heron_media.repository import Media


class Hooks:
    async def before_upload(self, principal: Principal, filename: str, claimed_type: str) -> None:
        return None

    async def after_upload(self, principal: Principal, media: Media) -> None:
        return None

    async def after_delete(self, principal: Principal, media: Media) -> None:
        return None
