"""Liveness and readiness: open to anyone, answered without looking at credentials."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends
from grpc_health.v1 import health_pb2
from heron_common.registry import SERVICES
from starlette.responses import Response

from heron_gateway.render import json_response, now_iso
from heron_gateway.schemas import Health, Readiness
from heron_gateway.security import OPEN, Access
from heron_gateway.upstreams import SettingsDep, Upstreams, UpstreamsDep

router = APIRouter(tags=["health"])
Open = Annotated[None, Depends(Access(OPEN))]


@router.get("/health", response_model=Health, summary="Liveness")
async def health(_: Open) -> Response:
    """The gateway process is up; says nothing about the services behind it."""
    return json_response({"status": "ok"})


@router.get("/api/health", summary="Liveness (SonicJS's path)")
async def api_health(_: Open) -> Response:
    """SonicJS's health route and shape: the gateway is up (`/ready` checks the services).
    `schemas` is SonicJS's list of code-defined schemas, which Heron does not have."""
    return json_response({"status": "healthy", "timestamp": now_iso(), "schemas": []})


async def _check(stub: Any, service: str, timeout: float) -> str:  # noqa: ASYNC109
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower())
    except grpc.aio.AioRpcError as exc:
        return "unreachable" if exc.code() != grpc.StatusCode.NOT_FOUND else "unknown"


async def readiness(upstreams: Upstreams, timeout: float) -> dict[str, str]:  # noqa: ASYNC109
    """Each service's gRPC health (`serving`, `not_serving`, `unreachable`, …) and whether the
    gateway has the permissions it verifies callers with (`synced` or `pending`)."""
    states = await asyncio.gather(
        *(_check(upstreams.health[s.name], s.grpc_service, timeout) for s in SERVICES)
    )
    checks = dict(zip((s.name for s in SERVICES), states, strict=True))
    checks["permissions"] = "synced" if upstreams.authenticator.ready else "pending"
    return checks


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A backend is not serving"}},
    summary="Readiness",
)
async def ready(upstreams: UpstreamsDep, settings: SettingsDep, _: Open) -> Response:
    """Every backend service answers its gRPC health check with SERVING, and the gateway has
    fetched the permissions and revocations it verifies callers with."""
    checks = await readiness(upstreams, settings.ready_timeout_seconds)
    ok = all(state in ("serving", "synced") for state in checks.values())
    return json_response(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status=200 if ok else 503,
    )
