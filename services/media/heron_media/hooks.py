"""The media hooks (`media:beforeUpload`, `media:afterUpload`, `media:afterDelete`): the one
place where the media service calls the plugins.

`before_upload` runs the active plugins' `media:beforeUpload` handlers through the plugins
service (heron_common.plugin_hooks), before any byte is stored: a plugin may refuse the upload
(the client gets its reason, naming it). With no plugin handling it, nothing is called. The
after hooks are no-ops until the plugins service delivers after-events (from an outbox).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from heron_common.context import request_id_var
from heron_common.plugin_hooks import PluginHooks
from heron_common.security.permissions import Principal

if TYPE_CHECKING:
    from heron_media.repository import Media

BEFORE_UPLOAD = "media:beforeUpload"


class Hooks:
    def __init__(self, plugins: PluginHooks | None = None) -> None:
        self.plugins = plugins

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

    async def after_upload(self, principal: Principal, media: Media) -> None:
        return None

    async def after_delete(self, principal: Principal, media: Media) -> None:
        return None
