"""Assemble the auth service: its use cases on its database, its servicer, and the spec
`heron_common.service` runs it by (`python -m heron_auth`)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from cms.auth.v1 import auth_pb2_grpc
from heron_common.db import Database
from heron_common.redis.client import create_redis
from heron_common.redis.ratelimit import RateLimiter
from heron_common.security.identity import Authenticator, StateUpdate
from heron_common.service import (
    Built,
    ServiceSpec,
    open_database,
    plugin_outbox,
    remote_plugin_hooks,
)

from heron_auth import models
from heron_auth.passwords import Passwords
from heron_auth.service import AuthService
from heron_auth.servicer import POLICY, AuthServicer
from heron_auth.settings import AuthSettings
from heron_auth.throttle import SignInThrottle
from heron_auth.tokens import TokenIssuer

logger = logging.getLogger("heron.auth")

PRUNE_SECONDS = 300.0


class LocalAuthSource:
    """The auth service verifies callers' tokens from its own store, without a network hop."""

    def __init__(self, service: AuthService) -> None:
        self.service = service

    async def jwks(self) -> tuple[dict[str, Any], str]:
        return await self.service.issuer.jwks()

    async def state(self, cursor: int, roles_version: str) -> StateUpdate:
        update, _ = await self.service.sessions.auth_state(cursor, roles_version)
        return update


async def build_service(
    settings: AuthSettings, database: Database, stack: AsyncExitStack
) -> AuthService:
    """The use cases on the migrated `database`, with the built-in roles and a signing key."""
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
    throttle = SignInThrottle(limiter, settings)
    stack.push_async_callback(throttle.close)
    service = AuthService(database, settings, passwords, issuer, throttle)
    await service.roles.ensure_builtin()
    await issuer.ensure_key()
    return service


async def open_service(settings: AuthSettings, stack: AsyncExitStack) -> AuthService:
    """The use cases on a migrated store, closed with `stack` (for the commands)."""
    database, _ = await open_database(SPEC, settings, stack)
    return await build_service(settings, database, stack)


def build_authenticator(service: AuthService, settings: AuthSettings) -> Authenticator:
    return Authenticator(
        LocalAuthSource(service),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        poll_seconds=settings.auth_poll_seconds,
    )


async def build(
    settings: AuthSettings, database: Database, created: bool, stack: AsyncExitStack
) -> Built:
    service = await build_service(settings, database, stack)
    if settings.admin_email and settings.admin_password and not await service.users.has_users():
        await service.users.add_first_admin(settings.admin_email, settings.admin_password)
        logger.info("first admin created from HERON_ADMIN_EMAIL")

    async def prune_forever() -> None:
        while True:
            await asyncio.sleep(PRUNE_SECONDS)
            try:
                await service.sessions.prune()
            except Exception:
                logger.exception("pruning expired sessions failed")

    # Sign-ins and sign-ups are after-events for the plugins (heron_common.outbox).
    hooks = remote_plugin_hooks(settings, stack)
    outbox, relay = plugin_outbox("auth", database, models.outbox, hooks)
    service.context.outbox = outbox
    # Roles may hold the permissions the active plugins add.
    service.roles.plugin_permissions = lambda: hooks.permissions

    def register(server: Any) -> None:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(service), server)

    return Built(
        register=register,
        authenticator=build_authenticator(service, settings),
        background=[prune_forever, hooks.run, relay.run],
    )


SPEC = ServiceSpec(
    name="auth",
    settings=AuthSettings,
    migrations=Path(__file__).resolve().parent / "migrations",
    policy=POLICY,
    build=build,
)
