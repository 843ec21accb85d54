"""Assemble the plugins service: the plugins the environment declares, their persisted state,
the servicer, and the spec `heron_common.service` runs it by (`python -m heron_plugins`)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from cms.auth.v1 import auth_pb2_grpc
from cms.content.v1 import content_pb2_grpc
from cms.plugins.v1 import plugins_pb2_grpc
from heron_common.db import Database
from heron_common.rpc.client import create_channel
from heron_common.service import Built, ServiceSpec, remote_authenticator

from heron_plugins.discovery import discover
from heron_plugins.inbox import Inbox
from heron_plugins.runtime import Runtime
from heron_plugins.service import Plugins
from heron_plugins.servicer import POLICY, PluginsServicer
from heron_plugins.settings import PluginsSettings

logger = logging.getLogger("heron.plugins")


async def build(
    settings: PluginsSettings, database: Database, created: bool, stack: AsyncExitStack
) -> Built:
    found = discover()
    plugins = Plugins(database, found)
    await plugins.start()
    logger.info(
        "plugins found",
        extra={
            "plugins": sorted(n for n, f in found.items() if f.manifest is not None),
            "errors": sorted(n for n, f in found.items() if f.manifest is None),
        },
    )

    # Plugins read published content as an anonymous reader would (e.g. the sitemap).
    content_channel = create_channel(settings.content_target)
    stack.push_async_callback(content_channel.close)
    content = content_pb2_grpc.ContentServiceStub(content_channel)
    auth_channel = create_channel(settings.auth_target)
    stack.push_async_callback(auth_channel.close)
    auth = auth_pb2_grpc.AuthServiceStub(auth_channel)
    runtime = Runtime(plugins, settings, content, auth)
    inbox = Inbox(database, runtime)

    def register(server: Any) -> None:
        servicer = PluginsServicer(plugins, runtime, inbox)
        plugins_pb2_grpc.add_PluginsServiceServicer_to_server(servicer, server)

    return Built(
        register=register,
        authenticator=remote_authenticator(settings, stack),
        background=[inbox.run, runtime.run],
    )


SPEC = ServiceSpec(
    name="plugins",
    settings=PluginsSettings,
    migrations=Path(__file__).resolve().parent / "migrations",
    policy=POLICY,
    build=build,
)
