"""The plugin registry: what is installed, its lifecycle, settings and activity log."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from cms.plugins.v1 import plugins_pb2 as pb
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from heron_common.errors import ErrorDetail, NotFound
from heron_common.plugin_hooks import ActiveRoute
from heron_common.rpc.client import call
from heron_common.rpc.peers import forwarded_client
from heron_common.security.authz import PUBLIC, deny
from heron_common.security.permissions import ADMIN_ROLE, PERMISSIONS, Principal
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.responses import Response

from heron_gateway.render import iso_from_ms, json_response
from heron_gateway.schemas import ERROR_RESPONSES
from heron_gateway.security import PLUGIN, Access
from heron_gateway.upstreams import SettingsDep, UpstreamsDep

router = APIRouter(tags=["plugins"], responses=ERROR_RESPONSES)

CanRead = Annotated[Principal, Depends(Access("plugins.read"))]
CanManage = Annotated[Principal, Depends(Access("plugins.manage"))]
# A plugin route's permission is the plugin's, checked in the route (it is known only then).
Anyone = Annotated[Principal, Depends(Access(PLUGIN))]
ADMIN_PERMISSIONS = frozenset(PERMISSIONS)
Name = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{0,63}$", description="The plugin's name.")]


def _ms(value: int) -> str | None:
    return iso_from_ms(value) if value else None


def plugin_json(p: pb.Plugin) -> dict[str, Any]:
    return {
        "name": p.name,
        "version": p.version,
        "description": p.description,
        "author": p.author,
        "status": p.status,
        "error": p.error or None,
        "core": p.core,
        "dependencies": {d.name: d.versions for d in p.dependencies},
        "hooks": [{"event": h.event, "priority": h.priority} for h in p.hooks],
        "routes": [
            {"method": r.method, "path": r.path, "permission": r.permission} for r in p.routes
        ],
        "permissions": list(p.permissions),
        "settings_schema": orjson.loads(p.settings_schema_json) if p.settings_schema_json else None,
        # Calls, failures and timeouts per hook and route, since the plugins service started.
        "stats": orjson.loads(p.stats_json) if p.stats_json else {},
        "installed_at": _ms(p.installed_at),
        "updated_at": _ms(p.updated_at),
    }


def settings_json(s: pb.PluginSettings) -> dict[str, Any]:
    return {
        "name": s.name,
        "settings": orjson.loads(s.settings_json),
        "secrets_set": list(s.secrets_set),
        "updated_at": _ms(s.updated_at),
    }


@router.get("/api/plugins", summary="List plugins")
async def list_plugins(
    upstreams: UpstreamsDep, settings: SettingsDep, principal: CanRead
) -> Response:
    """Every plugin the installation holds: `available` (found, not installed), `inactive`,
    `active`, or `error` (it failed to load; `error` says why)."""
    reply = await call(
        upstreams.plugins.ListPlugins,
        pb.ListPluginsRequest(),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    data = [plugin_json(p) for p in reply.plugins]
    return json_response({"data": data, "meta": {"count": len(data)}})


@router.get("/api/plugins/{name}", summary="Get a plugin")
async def get_plugin(
    name: Name, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanRead
) -> Response:
    reply = await call(
        upstreams.plugins.GetPlugin,
        pb.GetPluginRequest(name=name),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": plugin_json(reply)})


ACTIONS = {
    "install": "Install a plugin (its settings start at their defaults)",
    "activate": "Activate a plugin (its dependencies must be active, in range)",
    "deactivate": "Deactivate a plugin (no active plugin may need it)",
    "uninstall": "Uninstall a plugin (once inactive; its settings go)",
}


def _lifecycle_route(action: str) -> None:
    async def change_plugin(
        name: Name, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanManage
    ) -> Response:
        method = {
            "install": upstreams.plugins.InstallPlugin,
            "activate": upstreams.plugins.ActivatePlugin,
            "deactivate": upstreams.plugins.DeactivatePlugin,
            "uninstall": upstreams.plugins.UninstallPlugin,
        }[action]
        reply = await call(
            method,
            pb.PluginActionRequest(name=name),
            timeout=settings.rpc_timeout_seconds,
            metadata=principal.metadata(),
        )
        return json_response({"data": plugin_json(reply)})

    change_plugin.__name__ = f"{action}_plugin"
    change_plugin.__doc__ = "A refusal (409) says which plugin and why."
    router.post(f"/api/plugins/{{name}}/{action}", summary=ACTIONS[action])(change_plugin)


for _action in ACTIONS:
    _lifecycle_route(_action)


@router.get("/api/plugins/{name}/settings", summary="Get a plugin's settings")
async def get_settings(
    name: Name, upstreams: UpstreamsDep, settings: SettingsDep, principal: CanManage
) -> Response:
    """The settings, without the values of secret ones (`secrets_set` names those that hold
    one)."""
    reply = await call(
        upstreams.plugins.GetPluginSettings,
        pb.GetPluginRequest(name=name),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": settings_json(reply)})


@router.put("/api/plugins/{name}/settings", summary="Replace a plugin's settings")
async def put_settings(
    name: Name,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanManage,
    body: Annotated[
        dict[str, Any], Body(description="Every setting; a secret left out keeps its value.")
    ],
) -> Response:
    """Checked against the plugin's settings schema (400 names each setting that does not
    hold). The activity log records which settings changed, never their values."""
    reply = await call(
        upstreams.plugins.UpdatePluginSettings,
        pb.UpdatePluginSettingsRequest(name=name, settings_json=orjson.dumps(body)),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    return json_response({"data": settings_json(reply)})


@router.get("/api/plugins/{name}/activity", summary="A plugin's activity log")
async def plugin_activity(
    name: Name,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanRead,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Every lifecycle and settings change, newest first: who, when, what."""
    reply = await call(
        upstreams.plugins.ListPluginActivity,
        pb.ListPluginActivityRequest(name=name, limit=limit),
        timeout=settings.rpc_timeout_seconds,
        metadata=principal.metadata(),
    )
    data = [
        {"action": a.action, "actor": a.actor, "at": iso_from_ms(a.at), "detail": a.detail}
        for a in reply.activity
    ]
    return json_response({"data": data, "meta": {"count": len(data)}})


# What a plugin route gets of the request's headers (never credentials or cookies: the
# plugin learns who the caller is from the verified principal).
FORWARDED_HEADERS = ("content-type", "accept", "accept-language", "user-agent", "if-none-match")
# What the gateway passes back of a plugin's answer.
RETURNED_HEADERS = frozenset(
    {"content-type", "cache-control", "etag", "location", "vary", "retry-after"}
    | {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy"}
)


async def plugin_route(
    name: Name,
    path: str,
    request: Request,
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: Anyone,
) -> Response:
    """Served by the plugin through the plugins service, with the permission its manifest
    declares checked here (401 anonymous, 403 without it); 404 unless the plugin is active."""
    wanted = "/" + path
    route = next(
        (
            r
            for r in upstreams.active_plugins.routes
            if r.plugin == name and r.method == request.method and r.pattern.match(wanted)
        ),
        None,
    )
    if route is None:
        raise NotFound(
            "No such route of an active plugin.",
            [ErrorDetail("path", f"{request.method} /api/plugins/{name}{wanted}")],
        )
    if route.permission != PUBLIC and not _may(principal, route.permission):
        raise deny(principal, f"this route of {name} needs the `{route.permission}` permission.")
    reply = await forward_to_plugin(name, wanted, request, upstreams, settings, principal)
    return plugin_response(reply)


async def forward_to_plugin(
    name: str,
    path: str,
    request: Request,
    upstreams: Any,
    settings: Any,
    principal: Principal,
) -> pb.RouteResponse:
    """The plugin's answer to this request at `path` of its routes, through the plugins
    service, with the caller's verified principal and the client's address (vouched for with
    the internal secret, for the plugin's own rate limits)."""
    body = await request.body()
    forwarded = [
        pb.Header(name=h, value=request.headers[h])
        for h in FORWARDED_HEADERS
        if h in request.headers
    ]
    address = request.client.host if request.client else "unknown"
    reply: pb.RouteResponse = await call(
        upstreams.plugins.HandleRoute,
        pb.RouteRequest(
            plugin=name,
            method=request.method,
            path=path,
            query=request.url.query.encode("latin-1"),
            headers=forwarded,
            body=body,
        ),
        timeout=settings.rpc_timeout_seconds,
        metadata=(
            *principal.metadata(),
            *upstreams.active_plugins.metadata,
            *forwarded_client(address, settings.internal_secret),
        ),
    )
    return reply


def plugin_response(reply: pb.RouteResponse) -> Response:
    response = Response(reply.body, status_code=reply.status)
    for header in reply.headers:
        if header.name.lower() in RETURNED_HEADERS:
            response.headers[header.name.lower()] = header.value
    return response


# The plugin checks its own query parameters (heron_gateway.routing lets any through).
plugin_route.takes_any_query = True  # type: ignore[attr-defined]


RESERVED = (*ACTIONS, "settings", "activity")


class PluginPath(PathConvertor):
    """A plugin route's path: anything but the registry's own routes of a plugin (so that
    `/api/plugins/x/settings` is only the settings', and its `Allow` says so)."""

    regex = "(?!(?:" + "|".join(RESERVED) + ")$).*"


register_url_convertor("pluginpath", PluginPath())
for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    router.add_api_route(
        "/api/plugins/{name}/{path:pluginpath}",
        plugin_route,
        methods=[_method],
        operation_id=f"plugin_route_{_method.lower()}",
        summary="An active plugin's own routes",
    )


def _may(principal: Principal, permission: str) -> bool:
    """A plugin's own permissions are held by admins (every permission) until roles may
    be given them; Heron's are checked as everywhere."""
    if principal.may(permission):
        return True
    return principal.role == ADMIN_ROLE and ADMIN_PERMISSIONS <= principal.permissions


def with_active_routes(document: dict[str, Any], routes: list[ActiveRoute]) -> dict[str, Any]:
    """The API description with the active plugins' routes in it (a copy: `document` is the
    app's own, cached)."""
    if not routes:
        return document
    paths = dict(document.get("paths", {}))
    for route in routes:
        url = f"/api/plugins/{route.plugin}{route.path}"
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", route.path)
        ]
        needs = "anyone" if route.permission == PUBLIC else f"`{route.permission}`"
        operation = {
            "tags": ["plugins"],
            "summary": f"{route.plugin}: {route.method} {route.path}",
            "description": f"Served by the plugin `{route.plugin}`; needs {needs}.",
            "operationId": f"plugin_{route.plugin}_{route.method.lower()}_{route.path}",
            "parameters": parameters,
            "responses": {
                "200": {"description": "The plugin's answer"},
                "401": {"description": "Sign in first"},
                "403": {"description": "The permission is missing"},
            },
        }
        paths[url] = {**paths.get(url, {}), route.method.lower(): operation}
    return {**document, "paths": paths}
