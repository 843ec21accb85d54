"""Assemble the media service: storage, use cases, servicer, and the spec
`heron_common.service` runs it by (`python -m heron_media`)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from cms.content.v1 import content_pb2_grpc
from cms.media.v1 import media_pb2_grpc
from heron_common.cache import TieredCache
from heron_common.cache.tags import media_tags
from heron_common.db import Database
from heron_common.redis.client import create_redis
from heron_common.rpc.client import create_channel
from heron_common.service import (
    Built,
    ServiceSpec,
    plugin_outbox,
    remote_authenticator,
    remote_plugin_hooks,
)

from heron_media import models
from heron_media.hooks import Hooks
from heron_media.service import MediaService
from heron_media.servicer import POLICY, MediaServicer
from heron_media.settings import MediaSettings
from heron_media.storage import create_storage
from heron_media.visibility import Visibility

logger = logging.getLogger("heron.media")


async def build(
    settings: MediaSettings, database: Database, created: bool, stack: AsyncExitStack
) -> Built:
    storage = create_storage(settings)
    await storage.start()
    stack.push_async_callback(storage.close)
    content_channel = create_channel(settings.content_target)
    stack.push_async_callback(content_channel.close)
    visibility = Visibility(
        settings.public_files,
        content_pb2_grpc.ContentServiceStub(content_channel),
        settings.peer_timeout_seconds,
    )
    redis = create_redis(settings.redis_url)
    changed = None
    if redis is not None:
        stack.push_async_callback(redis.aclose)
        # Only to drop the gateways' copies of a file (and pages that include it) after it
        # changed; it reaches them over Redis.
        pages: TieredCache[Any] = TieredCache(
            "gateway", redis=redis, redis_prefix=settings.redis_prefix
        )

        async def changed(media_id: str) -> None:
            await pages.invalidate(tags=media_tags([media_id]))

    plugins = remote_plugin_hooks(settings, stack)
    outbox, relay = plugin_outbox("media", database, models.outbox, plugins)
    service = MediaService(
        database,
        storage,
        settings,
        Hooks(plugins, outbox),
        visibility=visibility,
        changed=changed,
    )
    stack.callback(service.close)
    # What a crash left half-done is removed before serving, then every minute.
    await service.reap()
    logger.info("media storage ready", extra={"storage": storage.name})

    def register(server: Any) -> None:
        media_pb2_grpc.add_MediaServiceServicer_to_server(MediaServicer(service), server)

    return Built(
        register=register,
        authenticator=remote_authenticator(settings, stack),
        background=[service.reap_forever, plugins.run, relay.run],
    )


SPEC = ServiceSpec(
    name="media",
    settings=MediaSettings,
    migrations=Path(__file__).resolve().parent / "migrations",
    policy=POLICY,
    build=build,
)
