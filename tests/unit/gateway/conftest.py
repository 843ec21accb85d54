"""The gateway app in this process, with no service behind it: for what the gateway decides
on its own (routing, methods, URL and header hygiene, CORS, security headers, limits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from heron_common.registry import SERVICES
from heron_gateway.app import create_app
from heron_gateway.settings import GatewaySettings

from tests.conftest import free_port


@asynccontextmanager
async def gateway_client(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    # Every service "runs" on a port nothing listens on.
    targets = {service.target_setting: f"127.0.0.1:{free_port()}" for service in SERVICES}
    app = create_app(GatewaySettings(redis_url="", **targets, **settings))
    async with LifespanManager(app) as running:
        transport = httpx.ASGITransport(app=running.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield c


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client() as client:
        yield client
