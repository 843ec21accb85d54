"""Assemble the content service: its use cases on its database and caches, its servicer, and
the spec `heron_common.service` runs it by (`python -m heron_content`)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from cms.content.v1 import content_pb2_grpc
from cms.media.v1 import media_pb2_grpc
from heron_common.cache import TieredCache
from heron_common.cache.codec import MsgpackCodec
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

from heron_content import models
from heron_content.caching import ContentCache
from heron_content.collections_as_code import sync_collections
from heron_content.media import MediaFiles
from heron_content.repository import RECORDS
from heron_content.scheduler import Scheduler
from heron_content.seed import seed_demo
from heron_content.service import ContentService
from heron_content.servicer import POLICY, ContentServicer
from heron_content.settings import ContentSettings

logger = logging.getLogger("heron.content")


async def build(
    settings: ContentSettings, database: Database, created: bool, stack: AsyncExitStack
) -> Built:
    redis = create_redis(settings.redis_url)
    if redis is not None:
        stack.push_async_callback(redis.aclose)
    rows: TieredCache[Any] = TieredCache(
        "content",
        redis=redis,
        redis_prefix=settings.redis_prefix,
        enabled=settings.cache_enabled,
        ttl=settings.cache_ttl_seconds,
        codec=MsgpackCodec(RECORDS),
    )
    await rows.start()
    stack.push_async_callback(rows.stop)
    # Only to invalidate the gateways' pages after writes; it reaches them over Redis.
    pages: TieredCache[Any] | None = (
        TieredCache("gateway", redis=redis, redis_prefix=settings.redis_prefix)
        if redis is not None
        else None
    )
    # Media fields are checked against the media service, and included from it.
    media_channel = create_channel(settings.media_target)
    stack.push_async_callback(media_channel.close)
    # The active plugins' hooks; a write calls them only when one is active.
    hooks = remote_plugin_hooks(settings, stack)
    outbox, relay = plugin_outbox("content", database, models.outbox, hooks)
    service = ContentService(
        database,
        ContentCache(rows, pages),
        revisions_kept=settings.revisions_per_item,
        search_window=settings.search_rank_window,
        media=MediaFiles(
            media_pb2_grpc.MediaServiceStub(media_channel),
            settings.peer_timeout_seconds,
        ),
        hooks=hooks,
        outbox=outbox,
    )
    # Only a store created just now gets the demo: one its owner emptied stays empty.
    if settings.seed_demo and created:
        await seed_demo(service)
    if settings.collections_dir is not None:
        applied = await sync_collections(service, settings.collections_dir)
        logger.info("collection files applied", extra={"files": applied})

    def register(server: Any) -> None:
        content_pb2_grpc.add_ContentServiceServicer_to_server(ContentServicer(service), server)

    authenticator = remote_authenticator(settings, stack)
    # Scheduled changes run with the permissions their role has then (the auth service's).
    scheduler = Scheduler(
        service,
        lambda: authenticator.role_permissions,
        interval=settings.scheduler_interval_seconds,
        batch=settings.scheduler_batch,
    )
    return Built(
        register=register,
        authenticator=authenticator,
        background=[scheduler.run, hooks.run, relay.run],
    )


SPEC = ServiceSpec(
    name="content",
    settings=ContentSettings,
    migrations=Path(__file__).resolve().parent / "migrations",
    policy=POLICY,
    build=build,
)
