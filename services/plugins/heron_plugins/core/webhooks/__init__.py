"""The webhooks plugin: endpoints that receive Heron's after-events as signed HTTP posts,
from a durable queue, retried until they answer, with every attempt logged.

Routes (under `/api/plugins/webhooks`, permission `webhooks.manage`):
`GET|POST /endpoints`, `GET|PATCH|DELETE /endpoints/{id}`, `GET /endpoints/{id}/deliveries`,
`POST /deliveries/{id}/redeliver`. An endpoint's secret is shown once, when it is created.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import orjson

from heron_plugins.core.webhooks import guard
from heron_plugins.core.webhooks.service import AFTER_EVENTS, DEFAULTS, Invalid, Webhooks
from heron_plugins.manifest import Hook, Manifest, PluginContext, PluginRequest, PluginResponse

PERMISSION = "webhooks.manage"


class _Running:
    webhooks: Webhooks | None = None
    sender: Any = None
    task: asyncio.Task[None] | None = None


_running = _Running()


async def start(context: PluginContext) -> None:
    # Imported once the plugin runs (httpx is not small): a service where it is not active
    # never loads it.
    from heron_plugins.core.webhooks.sender import Sender

    allow = getattr(context.service_settings, "webhook_allow_hosts", [])
    webhooks = Webhooks(context, guard.Allowed.parse(allow))
    sender = Sender(webhooks)
    _running.webhooks, _running.sender = webhooks, sender
    _running.task = asyncio.create_task(sender.run(), name="webhooks-sender")


async def stop() -> None:
    task, sender = _running.task, _running.sender
    _running.webhooks = _running.sender = _running.task = None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if sender is not None:
        await sender.close()


async def enqueue(payload: dict[str, Any]) -> None:
    if _running.webhooks is not None:
        await _running.webhooks.enqueue(payload)


def _json(status: int, value: Any) -> PluginResponse:
    return PluginResponse(status, orjson.dumps(value))


def _error(status: int, message: str, field: str = "") -> PluginResponse:
    details = [{"field": field, "message": message}] if field else []
    return _json(status, {"error": message, "details": details})


def _unavailable() -> PluginResponse:
    return _error(503, "The webhooks plugin is starting; retry shortly.")


def _not_found(what: str) -> PluginResponse:
    return _error(404, f"No such {what}.")


def _body(request: PluginRequest) -> Any:
    try:
        return request.json()
    except orjson.JSONDecodeError:
        raise Invalid("body", "not JSON") from None


async def list_endpoints(request: PluginRequest) -> PluginResponse:
    if (w := _running.webhooks) is None:
        return _unavailable()
    return _json(200, {"data": [e.shown() for e in await w.all()]})


async def create_endpoint(request: PluginRequest) -> PluginResponse:
    if (w := _running.webhooks) is None:
        return _unavailable()
    try:
        made = await w.create(request.user_id, _body(request))
    except Invalid as exc:
        return _error(400, f"Validation failed: {exc.field}: {exc.message}", exc.field)
    # The secret, once: it is never shown again.
    return _json(201, {"data": {**made.shown(), "secret": made.secret}})


async def get_endpoint(request: PluginRequest) -> PluginResponse:
    if (w := _running.webhooks) is None:
        return _unavailable()
    found = await w.get(request.path_params["id"])
    return _not_found("endpoint") if found is None else _json(200, {"data": found.shown()})


async def change_endpoint(request: PluginRequest) -> PluginResponse:
    if (w := _running.webhooks) is None:
        return _unavailable()
    try:
        changed = await w.change(request.path_params["id"], _body(request))
    except Invalid as exc:
        return _error(400, f"Validation failed: {exc.field}: {exc.message}", exc.field)
    return _not_found("endpoint") if changed is None else _json(200, {"data": changed.shown()})


async def delete_endpoint(request: PluginRequest) -> PluginResponse:
    if (w := _running.webhooks) is None:
        return _unavailable()
    if not await w.remove(request.path_params["id"]):
        return _not_found("endpoint")
    return PluginResponse(204, b"")


async def endpoint_deliveries(request: PluginRequest) -> PluginResponse:
    if (w := _running.webhooks) is None:
        return _unavailable()
    endpoint_id = request.path_params["id"]
    if await w.get(endpoint_id) is None:
        return _not_found("endpoint")
    try:
        limit = max(1, min(int(request.query.get("limit", ["50"])[0]), 200))
    except ValueError:
        return _error(400, "Validation failed: limit: a number from 1 to 200", "limit")
    return _json(200, {"data": await w.log(endpoint_id, limit)})


async def redeliver(request: PluginRequest) -> PluginResponse:
    if (w := _running.webhooks) is None:
        return _unavailable()
    if not await w.redeliver(request.path_params["id"]):
        return _not_found("delivery")
    return _json(202, {"data": {"id": request.path_params["id"], "status": "pending"}})


def _route(method: str, path: str, handler: Any) -> dict[str, Any]:
    return {"method": method, "path": path, "permission": PERMISSION, "handler": handler}


manifest = Manifest(
    name="webhooks",
    version="1.0.0",
    description="Signed, retried and replayable HTTP posts of Heron's after-events "
    "(Standard Webhooks).",
    author="Heron",
    permissions=(PERMISSION,),
    migrations=Path(__file__).resolve().parent / "migrations",
    start=start,
    stop=stop,
    hooks=tuple(
        Hook(event=event, priority=1000, timeout_ms=2000, handler=enqueue) for event in AFTER_EVENTS
    ),
    routes=(
        _route("GET", "/endpoints", list_endpoints),
        _route("POST", "/endpoints", create_endpoint),
        _route("GET", "/endpoints/{id}", get_endpoint),
        _route("PATCH", "/endpoints/{id}", change_endpoint),
        _route("DELETE", "/endpoints/{id}", delete_endpoint),
        _route("GET", "/endpoints/{id}/deliveries", endpoint_deliveries),
        _route("POST", "/deliveries/{id}/redeliver", redeliver),
    ),  # type: ignore[arg-type]
    settings_schema={
        "type": "object",
        "properties": {
            "retry_base_seconds": {
                "type": "number",
                "minimum": 0.05,
                "maximum": 3600,
                "default": DEFAULTS["retry_base_seconds"],
                "description": "The wait after a delivery's first failed attempt; doubled "
                "after each further one.",
            },
            "retry_max_seconds": {
                "type": "number",
                "minimum": 0.05,
                "maximum": 86400,
                "default": DEFAULTS["retry_max_seconds"],
            },
            "max_attempts": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "default": DEFAULTS["max_attempts"],
            },
            "disable_after_failures": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10000,
                "default": DEFAULTS["disable_after_failures"],
                "description": "Failed attempts in a row after which an endpoint is disabled.",
            },
            "timeout_seconds": {
                "type": "number",
                "minimum": 0.1,
                "maximum": 60,
                "default": DEFAULTS["timeout_seconds"],
            },
        },
        "additionalProperties": False,
    },
)
