"""Integration fixtures: the content service's gRPC server on port 0 over a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cms.content.v1 import content_pb2_grpc
from heron_common.db import Database, create_engine
from heron_common.grpc_client import create_channel
from heron_common.grpc_server import StartedServer, start_server
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


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("fresh_postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'content.db'}"


@pytest.fixture
async def backend(database_url: str) -> AsyncIterator[ContentBackend]:
    database = Database(create_engine(database_url))
    await migrate.upgrade(database)
    service = ContentService(database)
    started = await start_server(
        build_server(service), host="127.0.0.1", port=0, service_names=[SERVICE_NAME]
    )
    channel = create_channel(f"127.0.0.1:{started.port}")
    try:
        yield ContentBackend(
            database, service, started, channel, content_pb2_grpc.ContentServiceStub(channel)
        )
    finally:
        await channel.close()
        await started.stop(0)
        await database.dispose()
