"""The media hooks (`media:beforeUpload`, `media:afterUpload`, `media:afterDelete`): the one
place where the media service calls the plugins.

`before_upload` runs the active plugins' `media:beforeUpload` handlers through the plugins
service (heron_common.plugin_hooks), before any byte is stored: a plugin may refuse the upload
(the client gets its reason, naming it). With no plugin handling it, nothing is called.

The after-events are added to the service's outbox (heron_common.outbox) in the transaction
that makes the upload visible, or hides the deleted file: they exist exactly when that
committed, and the relay delivers them to the plugins service after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from heron_common.context import request_id_var
from heron_common.names import file_path
from heron_common.outbox import Outbox, actor_of
from heron_common.plugin_hooks import PluginHooks
from heron_common.security.permissions import Principal
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from heron_media.repository import Media

BEFORE_UPLOAD = "media:beforeUpload"
AFTER_UPLOAD = "media:afterUpload"
AFTER_DELETE = "media:afterDelete"


def media_summary(media: Media) -> dict[str, Any]:
    return {
        "id": media.id,
        "filename": media.filename,
        "mime_type": media.mime_type,
        "size": media.size,
        "sha256": media.sha256,
        "width": media.width,
        "height": media.height,
        "folder": media.folder,
        "alt": media.alt,
        "caption": media.caption,
        "tags": list(media.tags),
        "uploaded_by": media.uploaded_by,
        "uploaded_at": media.uploaded_at,
        "url": file_path(media.id, media.filename),
    }


class Hooks:
    def __init__(self, plugins: PluginHooks | None = None, outbox: Outbox | None = None) -> None:
        self.plugins = plugins
        self.outbox = outbox

    async def before_upload(
        self, principal: Principal, filename: str, claimed_type: str, folder: str = "/"
    ) -> None:
        if self.plugins is None or not self.plugins.handles(BEFORE_UPLOAD):
            return
        await self.plugins.before(
            BEFORE_UPLOAD,
            {
                "file": {"filename": filename, "claimed_type": claimed_type, "folder": folder},
                "actor": {"id": principal.user_id, "role": principal.role},
                "request_id": request_id_var.get(),
            },
        )

    async def after_upload(self, conn: AsyncConnection, principal: Principal, media: Media) -> bool:
        """Add `media:afterUpload` in the transaction of `conn`; whether it was kept."""
        return await self._emit(conn, AFTER_UPLOAD, principal, media)

    async def after_delete(self, conn: AsyncConnection, principal: Principal, media: Media) -> bool:
        return await self._emit(conn, AFTER_DELETE, principal, media)

    def committed(self) -> None:
        """The transaction that added an after-event committed: relay it."""
        if self.outbox is not None:
            self.outbox.committed()

    async def _emit(
        self, conn: AsyncConnection, event: str, principal: Principal, media: Media
    ) -> bool:
        if self.outbox is None:
            return False
        return await self.outbox.add(
            conn,
            event,
            media.id,
            lambda: {"media": media_summary(media), "actor": actor_of(principal)},
        )
