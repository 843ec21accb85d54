"""Integration fixtures: the content service's gRPC server on port 0 over a real database,
with a real auth service (in process, on port 0) verifying its callers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cms.auth.v1 import auth_pb2_grpc
from cms.content.v1 import content_pb2_grpc
from heron_auth import server as auth_server
from heron_auth.settings import AuthSettings
from heron_common.db import Database, create_engine
from heron_common.grpc_client import create_channel
from heron_common.grpc_server import StartedServer, start_server
from heron_common.identity import Authenticator, GrpcAuthSource
from heron_content import migrate
from heron_content.server import SERVICE_NAME, build_server
from heron_content.service import ContentService


@dataclass
class ContentBackend:
    database: Database
    service: ContentService
    started: StartedServer
    channel: grpc.aio.Channel
    stub: content_pb2_grpc.ContentServiceStub
    anonymous: content_pb2_grpc.ContentServiceStub


class _Bearer(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds an access token to every call of a channel."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Awaitable[Any]],
        details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        metadata = [*(details.metadata or ()), ("authorization", f"Bearer {self.token}")]
        details = details._replace(metadata=metadata)
        return await continuation(details, request)


@pytest.fixture
async def auth_target(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """A real auth service on port 0; yields its address and an admin's access token."""
    settings = AuthSettings(
        data_dir=tmp_path, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1
    )
    service = await auth_server.build_service(settings)
    await service.add_user(email="admin@example.com", password="admin-Pw-12345", role="admin")
    token = (await service.login("admin@example.com", "admin-Pw-12345", "127.0.0.1")).access_token
    authenticator = auth_server.build_authenticator(service, settings)
    await authenticator.start()
    started = await start_server(
        auth_server.build_server(service, authenticator),
        host="127.0.0.1",
        port=0,
        service_names=[auth_server.SERVICE_NAME],
    )
    try:
        yield f"127.0.0.1:{started.port}", token
    finally:
        await started.stop(0)
        await authenticator.stop()
        await service.database.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("fresh_postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'content.db'}"


@pytest.fixture
async def backend(database_url: str, auth_target: tuple[str, str]) -> AsyncIterator[ContentBackend]:
    target, admin_token = auth_target
    auth_channel = create_channel(target)
    authenticator = Authenticator(
        GrpcAuthSource(auth_pb2_grpc.AuthServiceStub(auth_channel)),
        issuer="heron",
        audience="heron-api",
    )
    await authenticator.start()
    database = Database(create_engine(database_url))
    await migrate.upgrade(database)
    service = ContentService(database)
    started = await start_server(
        build_server(service, authenticator),
        host="127.0.0.1",
        port=0,
        service_names=[SERVICE_NAME],
    )
    address = f"127.0.0.1:{started.port}"
    channel = grpc.aio.insecure_channel(address, interceptors=[_Bearer(admin_token)])
    anonymous_channel = create_channel(address)
    try:
        yield ContentBackend(
            database,
            service,
            started,
            channel,
            content_pb2_grpc.ContentServiceStub(channel),
            content_pb2_grpc.ContentServiceStub(anonymous_channel),
        )
    finally:
        await channel.close()
        await anonymous_channel.close()
        await started.stop(0)
        await authenticator.stop()
        await auth_channel.close()
        await database.dispose()
