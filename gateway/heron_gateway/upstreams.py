"""What the gateway holds per process: one gRPC channel per upstream service (one for each
entry of `heron_common.registry.SERVICES`), the token verifier fed by the auth service, the
rate limiter, and the API token cache."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

import grpc
from cms.auth.v1 import auth_pb2_grpc
from cms.content.v1 import content_pb2_grpc
from cms.media.v1 import media_pb2_grpc
from cms.plugins.v1 import plugins_pb2_grpc
from fastapi import Depends, Request
from grpc_health.v1 import health_pb2_grpc
from heron_common.cache import TieredCache
from heron_common.cache.codec import RESPONSE, CachedResponse
from heron_common.cache.lru import BoundedLRU
from heron_common.plugin_hooks import PluginHooks
from heron_common.redis.client import create_redis
from heron_common.redis.ratelimit import RateLimiter
from heron_common.registry import SERVICES
from heron_common.rpc.client import create_channel, retry_service_config
from heron_common.security.identity import Authenticator, GrpcAuthSource

from heron_gateway.settings import GatewaySettings

StubT = TypeVar("StubT")


class ApiTokenCache:
    """API token → the access token it was exchanged for, keyed by the whole token's hash."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._entries: BoundedLRU[bytes, tuple[str, float]] = BoundedLRU(capacity)

    def get(self, digest: bytes) -> str | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        access, expires = entry
        if expires - 30 < time.time():  # refresh before it expires mid-request
            self._entries.pop(digest)
            return None
        return access

    def put(self, digest: bytes, access: str, expires_in: int) -> None:
        self._entries.put(digest, (access, time.time() + expires_in))

    def drop(self, digest: bytes) -> None:
        self._entries.pop(digest)


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        # One channel per service, whose reads (`Get*`, `List*`) are retried on failure.
        self.channels: dict[str, grpc.aio.Channel] = {
            service.name: create_channel(
                getattr(settings, service.target_setting),
                service_config=retry_service_config(
                    service.grpc_service, service.retry_safe_methods()
                ),
            )
            for service in SERVICES
        }
        # `/ready` asks each service how it is, NOT_SERVING included: a channel that does not
        # leave such servers out (the call channels do).
        self.health_channels = {
            service.name: create_channel(
                getattr(settings, service.target_setting), health_checked=False
            )
            for service in SERVICES
        }
        self.health = {
            name: health_pb2_grpc.HealthStub(c) for name, c in self.health_channels.items()
        }
        self._stubs: dict[tuple[str, object], object] = {}
        self.content = self.stub("content", content_pb2_grpc.ContentServiceStub)
        self.auth = self.stub("auth", auth_pb2_grpc.AuthServiceStub)
        self.media = self.stub("media", media_pb2_grpc.MediaServiceStub)
        self.plugins = self.stub("plugins", plugins_pb2_grpc.PluginsServiceStub)
        # The active plugins' routes (and hooks), fetched each second.
        self.active_plugins = PluginHooks(
            self.plugins,
            settings.internal_secret,
            poll_seconds=settings.auth_poll_seconds,
            timeout=settings.rpc_timeout_seconds,
        )
        self._active_task: asyncio.Task[None] | None = None
        self.authenticator = Authenticator(
            GrpcAuthSource(self.auth, timeout=settings.rpc_timeout_seconds),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            poll_seconds=settings.auth_poll_seconds,
            stale_after_seconds=settings.auth_stale_after_seconds,
        )
        self.redis = create_redis(settings.redis_url)
        self.limiter = RateLimiter(self.redis, prefix=f"{settings.redis_prefix}:rl")
        self.api_tokens = ApiTokenCache()
        # Ready-to-send answers (see response_cache); and a handle on the content service's
        # namespace, for the admin's invalidations (they reach its processes over Redis).
        self.pages: TieredCache[CachedResponse] = TieredCache(
            "gateway",
            redis=self.redis,
            redis_prefix=settings.redis_prefix,
            codec=RESPONSE,
            enabled=settings.cache_enabled,
            ttl=settings.cache_ttl_seconds,
        )
        self.content_rows: TieredCache[Any] = TieredCache(
            "content", redis=self.redis, redis_prefix=settings.redis_prefix
        )

    def stub(self, service: str, factory: Callable[[grpc.aio.Channel], StubT]) -> StubT:
        """The `factory` stub (e.g. `MediaServiceStub`) on the registered service's channel,
        made once per process."""
        found = self._stubs.get((service, factory))
        if found is None:
            found = self._stubs[service, factory] = factory(self.channels[service])
        return cast("StubT", found)

    async def start(self) -> None:
        await self.pages.start()
        await self.authenticator.start()
        self._active_task = asyncio.create_task(self.active_plugins.run(), name="active-plugins")

    async def close(self) -> None:
        if self._active_task is not None:
            self._active_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._active_task
        await self.authenticator.stop()
        await self.pages.stop()
        for channel in (*self.channels.values(), *self.health_channels.values()):
            await channel.close()
        if self.redis is not None:
            await self.redis.aclose()


# Dependencies are `async def` so FastAPI calls them on the loop; a plain `def` would be sent
# to the thread pool on every request.
async def get_upstreams(request: Request) -> Upstreams:
    upstreams: Upstreams = request.app.state.upstreams
    return upstreams


async def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


UpstreamsDep = Annotated[Upstreams, Depends(get_upstreams)]
SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
