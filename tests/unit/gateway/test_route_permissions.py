"""Every route and every gRPC method declares who may call it."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from google.protobuf import descriptor_pool
from heron_common.registry import SERVICES, Service
from heron_common.security.authz import INTERNAL
from heron_common.security.permissions import VALID_PERMISSIONS
from heron_gateway.app import create_app
from heron_gateway.security import OPEN, PLUGIN, Access
from heron_gateway.settings import GatewaySettings
from starlette.routing import Route

# The route FastAPI itself adds for the API description; it holds no data.
DOCUMENTATION = {"/openapi.json"}
MARKERS = {"public", "authenticated", OPEN, PLUGIN}


def _accesses(dependant: Dependant) -> list[Access]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, Access)]
    for sub in dependant.dependencies:
        found += _accesses(sub)
    return found


def _flatten(routes: list[Any]) -> list[Any]:
    flat = []
    for route in routes:
        included = getattr(route, "original_router", None)  # an included APIRouter
        flat += _flatten(list(included.routes)) if included is not None else [route]
    return flat


def _routes() -> list[Any]:
    app = create_app(GatewaySettings())
    while not hasattr(app, "routes"):  # unwrap the middleware
        app = app.app  # type: ignore[attr-defined]
    routes = _flatten(list(app.routes))
    assert len(routes) > 20
    return routes


def test_every_route_declares_its_access() -> None:
    undeclared = []
    for route in _routes():
        if isinstance(route, APIRoute):
            accesses = _accesses(route.dependant)
            if len(accesses) != 1:
                undeclared.append(f"{sorted(route.methods)} {route.path}: {accesses}")
            elif accesses[0].need not in MARKERS | VALID_PERMISSIONS:
                undeclared.append(f"{route.path}: unknown permission {accesses[0].need!r}")
        else:
            assert isinstance(route, Route) and route.path in DOCUMENTATION, route.path
    assert not undeclared, "\n".join(undeclared)


def test_write_routes_are_never_open_to_anonymous_callers() -> None:
    for route in _routes():
        if not isinstance(route, APIRoute) or route.methods <= {"GET", "HEAD"}:
            continue
        need = _accesses(route.dependant)[0].need
        if route.path.startswith("/auth/") or route.path in ("/admin/login", "/admin/logout"):
            continue  # sign-in routes authenticate by the credentials in their body
        if need == PLUGIN:
            continue  # the plugin's manifest names the permission; the route checks it
        assert need not in ("public", OPEN), f"{route.path} writes without a permission"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_grpc_method_declares_its_permission(service: Service) -> None:
    # Each service's servicer module declares `POLICY`: method name -> what it needs.
    policy: dict[str, str] = importlib.import_module(f"{service.package}.servicer").POLICY
    descriptor = descriptor_pool.Default().FindServiceByName(service.grpc_service)
    methods = {m.name for m in descriptor.methods}
    assert methods == set(policy), f"undeclared: {methods - set(policy)}"
    for need in policy.values():  # INTERNAL: for Heron's own processes only
        assert need in {"public", "authenticated", INTERNAL} | VALID_PERMISSIONS
