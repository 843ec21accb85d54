"""The plugin registry: what is installed, its lifecycle, settings and activity log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from cms.plugins.v1 import plugins_pb2 as pb
from fastapi import APIRouter, Body, Depends, Path, Query
from heron_common.rpc.client import call
from heron_common.security.permissions import Principal
from starlette.responses import Response

from heron_gateway.render import iso_from_ms, json_response
from heron_gateway.schemas import ERROR_RESPONSES
from heron_gateway.security import Access
from heron_gateway.upstreams import SettingsDep, UpstreamsDep

router = APIRouter(tags=["plugins"], responses=ERROR_RESPONSES)

CanRead = Annotated[Principal, Depends(Access("plugins.read"))]
CanManage = Annotated[Principal, Depends(Access("plugins.manage"))]
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


Action = Literal["install", "activate", "deactivate", "uninstall"]


@router.post("/api/plugins/{name}/{action}", summary="Install, activate, deactivate or uninstall")
async def change_plugin(
    name: Name,
    action: Annotated[Action, Path()],
    upstreams: UpstreamsDep,
    settings: SettingsDep,
    principal: CanManage,
) -> Response:
    """`install` (settings start at their defaults), `activate` (its dependencies must be
    active, in the versions it takes), `deactivate` (no active plugin may need it) and
    `uninstall` (once inactive; its settings go). A refusal (409) says why."""
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
