"""Integration fixtures: the content service's gRPC server on port 0 over a real database,
with a real auth service (in process, on port 0) verifying its callers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cms.auth.v1 import auth_pb2_grpc
from cms.content.v1 import content_pb2_grpc
from heron_auth import server as auth_server
from heron_auth.servicer import AuthServicer
from heron_auth.settings import AuthSettings
from heron_common.db import Database, create_engine
from heron_common.rpc.client import create_channel
from heron_common.rpc.server import StartedServer, start_server
from heron_common.service import Built, ServiceSpec, grpc_server, migrate, remote_authenticator
from heron_content.server import SPEC
from heron_content.service import ContentService
from heron_content.servicer import ContentServicer
from heron_content.settings import ContentSettings


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
    async with AsyncExitStack() as stack:
        service = await auth_server.open_service(settings, stack)
        await service.users.add(email="admin@example.com", password="admin-Pw-12345", role="admin")
        session = await service.sessions.login("admin@example.com", "admin-Pw-12345", "127.0.0.1")
        built = Built(
            register=lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(
                AuthServicer(service), server
            ),
            authenticator=auth_server.build_authenticator(service, settings),
        )
        started = await start_built(auth_server.SPEC, built, stack)
        yield f"127.0.0.1:{started.port}", session.access_token


async def start_built(spec: ServiceSpec[Any], built: Built, stack: AsyncExitStack) -> StartedServer:
    """`built` served on port 0, as `heron_common.service.serve` serves it, until `stack` closes."""
    await built.authenticator.start()
    stack.push_async_callback(built.authenticator.stop)
    started = await start_server(
        grpc_server(spec, built), host="127.0.0.1", port=0, service_names=[spec.grpc_service]
    )
    stack.push_async_callback(started.stop, 0)
    return started


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("fresh_postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'content.db'}"


@pytest.fixture
async def backend(database_url: str, auth_target: tuple[str, str]) -> AsyncIterator[ContentBackend]:
    target, admin_token = auth_target
    settings = ContentSettings(database_url=database_url, auth_target=target)
    async with AsyncExitStack() as stack:
        database = Database(create_engine(database_url))
        stack.push_async_callback(database.dispose)
        await migrate(SPEC, database)
        service = ContentService(database)  # no cache: every read reaches the database
        built = Built(
            register=lambda server: content_pb2_grpc.add_ContentServiceServicer_to_server(
                ContentServicer(service), server
            ),
            authenticator=remote_authenticator(settings, stack),
        )
        started = await start_built(SPEC, built, stack)
        address = f"127.0.0.1:{started.port}"
        channel = grpc.aio.insecure_channel(address, interceptors=[_Bearer(admin_token)])
        stack.push_async_callback(channel.close)
        anonymous_channel = create_channel(address)
        stack.push_async_callback(anonymous_channel.close)
        yield ContentBackend(
            database,
            service,
            started,
            channel,
            content_pb2_grpc.ContentServiceStub(channel),
            content_pb2_grpc.ContentServiceStub(anonymous_channel),
        )
