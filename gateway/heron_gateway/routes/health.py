"""Liveness and readiness."""

from __future__ import annotations

import grpc
from fastapi import APIRouter
from grpc_health.v1 import health_pb2
from starlette.responses import Response

from heron_gateway.render import json_response
from heron_gateway.schemas import Health, Readiness
from heron_gateway.upstreams import CONTENT_SERVICE, SettingsDep, UpstreamsDep

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Response:
    """The gateway process is up; says nothing about the services behind it."""
    return json_response({"status": "ok"})


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A backend is not serving"}},
    summary="Readiness",
)
async def ready(upstreams: UpstreamsDep, settings: SettingsDep) -> Response:
    """Every backend service answers its gRPC health check with SERVING."""
    try:
        reply = await upstreams.content_health.Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest(service=CONTENT_SERVICE),
            timeout=settings.ready_timeout_seconds,
        )
        content = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower()
    except grpc.aio.AioRpcError as exc:
        content = "unreachable" if exc.code() != grpc.StatusCode.NOT_FOUND else "unknown"
    ok = content == "serving"
    return json_response(
        {"status": "ready" if ok else "unavailable", "checks": {"content": content}},
        status=200 if ok else 503,
    )
