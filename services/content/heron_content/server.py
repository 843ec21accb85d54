"""Assemble and run the content service's gRPC server."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from cms.auth.v1 import auth_pb2_grpc
from cms.content.v1 import content_pb2, content_pb2_grpc
from heron_common.authz import MethodPolicy
from heron_common.cache import TieredCache
from heron_common.db import Database, create_engine
from heron_common.grpc_client import create_channel
from heron_common.grpc_server import create_server, run_server
from heron_common.identity import Authenticator, GrpcAuthSource
from heron_common.redis_client import create_redis

from heron_content import migrate
from heron_content.caching import ContentCache
from heron_content.seed import seed_demo
from heron_content.service import ContentService
from heron_content.servicer import POLICY, ContentServicer
from heron_content.settings import ContentSettings

logger = logging.getLogger("heron.content")

SERVICE_NAME = content_pb2.DESCRIPTOR.services_by_name["ContentService"].full_name


def build_server(service: ContentService, authenticator: Authenticator) -> grpc.aio.Server:
    server = create_server(policy=MethodPolicy(authenticator, SERVICE_NAME, POLICY))
    content_pb2_grpc.add_ContentServiceServicer_to_server(ContentServicer(service), server)
    return server


async def serve(settings: ContentSettings) -> None:
    database = Database(
        create_engine(settings.resolved_database_url("content"), pool_size=settings.db_pool_size)
    )
    created = await migrate.upgrade(database)
    redis = create_redis(settings.redis_url)
    rows: TieredCache[Any] = TieredCache(
        "content",
        redis=redis,
        redis_prefix=settings.redis_prefix,
        enabled=settings.cache_enabled,
        ttl=settings.cache_ttl_seconds,
    )
    await rows.start()
    # Only to invalidate the gateways' pages after writes; it reaches them over Redis.
    pages: TieredCache[Any] | None = (
        TieredCache("gateway", redis=redis, redis_prefix=settings.redis_prefix)
        if redis is not None
        else None
    )
    service = ContentService(database, ContentCache(rows, pages))
    # Only a store created just now gets the demo: one its owner emptied stays empty.
    if settings.seed_demo and created:
        await seed_demo(service)

    # Callers' tokens are verified here too, against the keys the auth service publishes.
    auth_channel = create_channel(settings.auth_target)
    authenticator = Authenticator(
        GrpcAuthSource(auth_pb2_grpc.AuthServiceStub(auth_channel)),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        poll_seconds=settings.auth_poll_seconds,
    )
    await authenticator.start()

    async def shutdown() -> None:
        await rows.stop()
        if redis is not None:
            await redis.aclose()
        await authenticator.stop()
        await auth_channel.close()
        await database.dispose()

    server = build_server(service, authenticator)
    await run_server(
        server,
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_names=[SERVICE_NAME],
        grace_seconds=settings.shutdown_grace_seconds,
        drain_seconds=settings.shutdown_drain_seconds,
        on_shutdown=shutdown,
        ready=authenticator.wait_ready,
    )
