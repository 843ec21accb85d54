"""The gateway's gRPC channels: one per upstream service per process, closed at shutdown."""

from __future__ import annotations

from typing import Annotated

from cms.content.v1 import content_pb2, content_pb2_grpc
from fastapi import Depends, Request
from grpc_health.v1 import health_pb2_grpc
from heron_common.grpc_client import create_channel, retry_service_config

from heron_gateway.settings import GatewaySettings

CONTENT_SERVICE = content_pb2.DESCRIPTOR.services_by_name["ContentService"].full_name
CONTENT_READS = ("GetCollection", "ListCollections", "GetItem", "ListItems")


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.content_channel = create_channel(
            settings.content_target,
            service_config=retry_service_config(CONTENT_SERVICE, CONTENT_READS),
        )
        self.content = content_pb2_grpc.ContentServiceStub(self.content_channel)
        self.content_health = health_pb2_grpc.HealthStub(self.content_channel)

    async def close(self) -> None:
        await self.content_channel.close()


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
