"""Assemble and run the auth service's gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc
from cms.auth.v1 import auth_pb2, auth_pb2_grpc
from heron_common.authz import MethodPolicy
from heron_common.db import Database, create_engine
from heron_common.grpc_server import create_server, run_server
from heron_common.identity import Authenticator, StateUpdate
from heron_common.ratelimit import RateLimiter
from heron_common.redis_client import create_redis

from heron_auth import migrate
from heron_auth.accounts import AuthService
from heron_auth.passwords import Passwords
from heron_auth.servicer import POLICY, AuthServicer
from heron_auth.settings import AuthSettings
from heron_auth.throttle import SignInThrottle
from heron_auth.tokens import TokenIssuer

logger = logging.getLogger("heron.auth")

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
PRUNE_SECONDS = 300.0


class LocalAuthSource:
    """The auth service verifies callers' tokens from its own store, without a network hop."""

    def __init__(self, service: AuthService) -> None:
        self.service = service

    async def jwks(self) -> tuple[dict[str, Any], str]:
        return await self.service.issuer.jwks()

    async def state(self, cursor: int, roles_version: str) -> StateUpdate:
        update, _ = await self.service.auth_state(cursor, roles_version)
        return update


async def build_service(settings: AuthSettings) -> AuthService:
    """Connect, migrate, and make sure the built-in roles and a signing key exist."""
    database = Database(
        create_engine(settings.resolved_database_url("auth"), pool_size=settings.db_pool_size)
    )
    await migrate.upgrade(database)
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    issuer = TokenIssuer(
        database,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    limiter = RateLimiter(create_redis(settings.redis_url), prefix=f"{settings.redis_prefix}:rl")
    service = AuthService(database, settings, passwords, issuer, SignInThrottle(limiter, settings))
    await service.ensure_builtin_roles()
    await issuer.ensure_key()
    return service


def build_server(service: AuthService, authenticator: Authenticator) -> grpc.aio.Server:
    server = create_server(policy=MethodPolicy(authenticator, SERVICE_NAME, POLICY))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(service), server)
    return server


def build_authenticator(service: AuthService, settings: AuthSettings) -> Authenticator:
    return Authenticator(
        LocalAuthSource(service),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        poll_seconds=settings.auth_poll_seconds,
    )


async def _prune_forever(service: AuthService) -> None:
    while True:
        await asyncio.sleep(PRUNE_SECONDS)
        try:
            await service.prune()
        except Exception:
            logger.exception("pruning expired sessions failed")


async def serve(settings: AuthSettings) -> None:
    service = await build_service(settings)
    if settings.admin_email and settings.admin_password and not await service.has_users():
        await service.add_first_admin(settings.admin_email, settings.admin_password)
        logger.info("first admin created from HERON_ADMIN_EMAIL")
    authenticator = build_authenticator(service, settings)
    await authenticator.start()
    pruner = asyncio.create_task(_prune_forever(service))

    async def shutdown() -> None:
        pruner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruner
        await authenticator.stop()
        await service.throttle.close()
        await service.database.dispose()

    await run_server(
        build_server(service, authenticator),
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_names=[SERVICE_NAME],
        grace_seconds=settings.shutdown_grace_seconds,
        drain_seconds=settings.shutdown_drain_seconds,
        on_shutdown=shutdown,
        ready=authenticator.wait_ready,
    )
