"""The admin's plugins: the list with each plugin's status (and why one is in error), its
lifecycle (install, activate, deactivate), and a settings form generated from its settings'
JSON Schema. Secret settings (`writeOnly`) are never shown: the form says whether one holds a
value, and an empty field keeps it.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import orjson
from cms.plugins.v1 import plugins_pb2 as pb
from fastapi import APIRouter, Depends, Request
from heron_common.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from heron_common.security.permissions import Principal
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from heron_gateway.admin_ui.pages import PageAccess, PageError, as_user, form, render
from heron_gateway.upstreams import Upstreams, UpstreamsDep

router = APIRouter(include_in_schema=False)
ReadsPlugins = Annotated[Principal, Depends(PageAccess("plugins.read"))]
ManagesPlugins = Annotated[Principal, Depends(PageAccess("plugins.manage"))]
_REFUSALS = (Conflict, InvalidArgument, NotFound, PermissionDenied, PreconditionFailed)
_ACTIONS = {
    "install": "InstallPlugin",
    "activate": "ActivatePlugin",
    "deactivate": "DeactivatePlugin",
}


def _summary(p: Any) -> dict[str, Any]:
    return {
        "name": p.name,
        "version": p.version,
        "description": p.description,
        "author": p.author,
        "status": p.status,
        "error": p.error,
        "core": p.core,
        "permissions": list(p.permissions),
        "hooks": [h.event for h in p.hooks],
        "has_settings": bool(orjson.loads(p.settings_schema_json or b"{}").get("properties")),
    }


@router.get("/admin/plugins")
async def plugins_page(
    request: Request,
    upstreams: UpstreamsDep,
    principal: ReadsPlugins,
    done: str | None = None,
) -> Response:
    listed = await as_user(
        upstreams, principal, upstreams.plugins.ListPlugins, pb.ListPluginsRequest()
    )
    return render(
        request,
        "plugins.html",
        principal,
        plugins=[_summary(p) for p in listed.plugins],
        done=(done or "")[:300],
    )


@router.post("/admin/plugins/{name}/{action}")
async def plugin_action(
    request: Request, name: str, action: str, upstreams: UpstreamsDep, principal: ManagesPlugins
) -> Response:
    await form(request, principal)
    method = _ACTIONS.get(action)
    if method is None:
        raise PageError(400, "Unknown action", "Install, activate or deactivate a plugin.")
    try:
        await as_user(
            upstreams,
            principal,
            getattr(upstreams.plugins, method),
            pb.PluginActionRequest(name=name),
        )
    except _REFUSALS as exc:
        raise PageError(exc.http_status, f"Cannot {action} {name}", exc.message) from None
    past = {"install": "installed", "activate": "activated", "deactivate": "deactivated"}[action]
    return RedirectResponse(f"/admin/plugins?done={quote(f'{name} {past}.')}", 303)


def _fields(
    schema: dict[str, Any], values: dict[str, Any], secrets: set[str]
) -> list[dict[str, Any]]:
    fields = []
    for key, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type") or "string"
        value = values.get(key, spec.get("default"))
        fields.append(
            {
                "name": key,
                "label": spec.get("title") or key.replace("_", " ").capitalize(),
                "help": spec.get("description") or "",
                "kind": "list" if kind == "array" else kind,
                "options": [str(o) for o in spec.get("enum") or []],
                "secret": bool(spec.get("writeOnly")),
                "secret_set": key in secrets,
                "value": ""
                if spec.get("writeOnly") or value is None
                else ", ".join(map(str, value))
                if isinstance(value, list)
                else value,
            }
        )
    return fields


async def _settings_page(
    request: Request,
    upstreams: Upstreams,
    principal: Principal,
    name: str,
    *,
    error: str = "",
    problems: list[str] | None = None,
    typed: dict[str, Any] | None = None,
    status: int = 200,
    notice: str = "",
) -> Response:
    try:
        plugin = await as_user(
            upstreams, principal, upstreams.plugins.GetPlugin, pb.GetPluginRequest(name=name)
        )
        current = await as_user(
            upstreams,
            principal,
            upstreams.plugins.GetPluginSettings,
            pb.GetPluginRequest(name=name),
        )
    except NotFound:
        raise PageError(404, "No such plugin", f"There is no plugin {name!r}.") from None
    except (PermissionDenied, Conflict, PreconditionFailed) as exc:
        raise PageError(exc.http_status, f"No settings for {name} now", exc.message) from None
    schema = orjson.loads(plugin.settings_schema_json or b"{}")
    values = typed if typed is not None else orjson.loads(current.settings_json or b"{}")
    return render(
        request,
        "plugin.html",
        principal,
        status=status,
        plugin=_summary(plugin),
        fields=_fields(schema, values, set(current.secrets_set)),
        error=error,
        problems=problems or [],
        notice=notice,
    )


@router.get("/admin/plugins/{name}")
async def plugin_page(
    request: Request,
    name: str,
    upstreams: UpstreamsDep,
    principal: ManagesPlugins,
    saved: str | None = None,
) -> Response:
    return await _settings_page(
        request, upstreams, principal, name, notice="Saved." if saved else ""
    )


def _settings_from(schema: dict[str, Any], data: FormData) -> tuple[dict[str, Any], list[str]]:
    """The settings the form gives, typed as the schema says; an empty field is left out, so
    a setting takes its default and a secret keeps its value."""
    settings: dict[str, Any] = {}
    problems = []
    for key, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type") or "string"
        field = f"settings.{key}"
        if kind == "boolean":
            settings[key] = data.get(field) == "on"
            continue
        raw = str(data.get(field) or "").strip()
        if not raw:  # the default applies (a secret keeps its value)
            continue
        if kind in ("integer", "number"):
            try:
                number = float(raw)
            except ValueError:
                problems.append(f"{key}: must be a number.")
                continue
            settings[key] = int(number) if kind == "integer" and number.is_integer() else number
        elif kind == "array":
            settings[key] = [v.strip() for v in raw.split(",") if v.strip()]
        elif kind == "object":
            try:
                settings[key] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                problems.append(f"{key}: must be JSON.")
        else:
            settings[key] = raw
    return settings, problems


@router.post("/admin/plugins/{name}")
async def update_settings(
    request: Request, name: str, upstreams: UpstreamsDep, principal: ManagesPlugins
) -> Response:
    data = await form(request, principal)
    try:
        plugin = await as_user(
            upstreams, principal, upstreams.plugins.GetPlugin, pb.GetPluginRequest(name=name)
        )
    except NotFound:
        raise PageError(404, "No such plugin", f"There is no plugin {name!r}.") from None
    schema = orjson.loads(plugin.settings_schema_json or b"{}")
    settings, problems = _settings_from(schema, data)
    if problems:
        return await _settings_page(
            request,
            upstreams,
            principal,
            name,
            error="Validation failed.",
            problems=problems,
            typed=settings,
            status=400,
        )
    try:
        await as_user(
            upstreams,
            principal,
            upstreams.plugins.UpdatePluginSettings,
            pb.UpdatePluginSettingsRequest(name=name, settings_json=orjson.dumps(settings)),
        )
    except _REFUSALS as exc:
        return await _settings_page(
            request,
            upstreams,
            principal,
            name,
            error=exc.message,
            problems=[f"{d.field}: {d.message}" if d.field else d.message for d in exc.details],
            typed=settings,
            status=exc.http_status,
        )
    return RedirectResponse(f"/admin/plugins/{quote(name)}?saved=1", 303)
