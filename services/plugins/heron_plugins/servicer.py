"""gRPC servicer: protobuf messages ⇄ plugin use cases, nothing else."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import grpc
import orjson
from cms.plugins.v1 import plugins_pb2 as pb
from cms.plugins.v1 import plugins_pb2_grpc
from heron_common.errors import ErrorDetail, InvalidArgument
from heron_common.rpc.peers import client_address
from heron_common.security.authz import INTERNAL, PUBLIC, current_principal

from heron_plugins.inbox import Inbox, Incoming
from heron_plugins.manifest import PluginRequest
from heron_plugins.repository import Activity
from heron_plugins.runtime import Runtime
from heron_plugins.service import Plugins, PluginState, Settings

Context = grpc.aio.ServicerContext[Any, Any]

# What each method needs.
POLICY: dict[str, str] = {
    "ListPlugins": "plugins.read",
    "GetPlugin": "plugins.read",
    "ListPluginActivity": "plugins.read",
    "InstallPlugin": "plugins.manage",
    "ActivatePlugin": "plugins.manage",
    "DeactivatePlugin": "plugins.manage",
    "UninstallPlugin": "plugins.manage",
    "GetPluginSettings": "plugins.manage",
    "UpdatePluginSettings": "plugins.manage",
    "GetActiveState": INTERNAL,
    "RunHook": INTERNAL,
    "HandleRoute": INTERNAL,
    "DeliverEvents": INTERNAL,
    "GetHookStats": INTERNAL,
}
assert PUBLIC not in POLICY.values()


def plugin_message(state: PluginState) -> pb.Plugin:
    message = pb.Plugin(name=state.name, status=state.status, error=state.error)
    m = state.manifest
    if m is not None:
        message.version = m.version
        message.description = m.description
        message.author = m.author
        message.core = m.core
        message.dependencies.extend(
            pb.Dependency(name=n, versions=v) for n, v in sorted(m.dependencies.items())
        )
        message.hooks.extend(pb.HookHandler(event=h.event, priority=h.priority) for h in m.hooks)
        message.routes.extend(
            pb.PluginRoute(method=r.method, path=r.path, permission=r.permission) for r in m.routes
        )
        message.permissions.extend(m.permissions)
        message.settings_schema_json = orjson.dumps(m.settings_schema)
    if state.installed is not None:
        message.installed_at = state.installed.installed_at
        message.updated_at = state.installed.updated_at
    return message


def settings_message(name: str, settings: Settings) -> pb.PluginSettings:
    return pb.PluginSettings(
        name=name,
        settings_json=orjson.dumps(settings.values),
        secrets_set=settings.secrets_set,
        updated_at=settings.updated_at,
    )


def activity_message(entry: Activity) -> pb.Activity:
    return pb.Activity(
        plugin=entry.plugin,
        action=entry.action,
        actor=entry.actor,
        at=entry.at,
        detail=entry.detail,
    )


class PluginsServicer(plugins_pb2_grpc.PluginsServiceServicer):
    def __init__(self, plugins: Plugins, runtime: Runtime, inbox: Inbox) -> None:
        self.plugins = plugins
        self.runtime = runtime
        self.inbox = inbox

    async def ListPlugins(
        self, request: pb.ListPluginsRequest, context: Context
    ) -> pb.ListPluginsResponse:
        return pb.ListPluginsResponse(
            plugins=[plugin_message(p) for p in await self.plugins.registry()]
        )

    async def GetPlugin(self, request: pb.GetPluginRequest, context: Context) -> pb.Plugin:
        message = plugin_message(await self.plugins.get(request.name))
        message.stats_json = orjson.dumps(self.runtime.stats(request.name))
        return message

    async def InstallPlugin(self, request: pb.PluginActionRequest, context: Context) -> pb.Plugin:
        return plugin_message(await self.plugins.install(current_principal(), request.name))

    async def ActivatePlugin(self, request: pb.PluginActionRequest, context: Context) -> pb.Plugin:
        return plugin_message(await self.plugins.activate(current_principal(), request.name))

    async def DeactivatePlugin(
        self, request: pb.PluginActionRequest, context: Context
    ) -> pb.Plugin:
        return plugin_message(await self.plugins.deactivate(current_principal(), request.name))

    async def UninstallPlugin(self, request: pb.PluginActionRequest, context: Context) -> pb.Plugin:
        return plugin_message(await self.plugins.uninstall(current_principal(), request.name))

    async def GetPluginSettings(
        self, request: pb.GetPluginRequest, context: Context
    ) -> pb.PluginSettings:
        return settings_message(request.name, await self.plugins.settings(request.name))

    async def UpdatePluginSettings(
        self, request: pb.UpdatePluginSettingsRequest, context: Context
    ) -> pb.PluginSettings:
        try:
            values = orjson.loads(request.settings_json or b"{}")
        except orjson.JSONDecodeError:
            raise InvalidArgument(
                "settings: not JSON", [ErrorDetail("settings", "not JSON")]
            ) from None
        changed = await self.plugins.update_settings(current_principal(), request.name, values)
        return settings_message(request.name, changed)

    async def ListPluginActivity(
        self, request: pb.ListPluginActivityRequest, context: Context
    ) -> pb.ListPluginActivityResponse:
        entries = await self.plugins.activity(request.name, request.limit)
        return pb.ListPluginActivityResponse(activity=[activity_message(e) for e in entries])

    async def GetActiveState(
        self, request: pb.GetActiveStateRequest, context: Context
    ) -> pb.ActiveState:
        active = await self.runtime.active()
        if request.known_version == active.version:
            return pb.ActiveState(version=active.version, unchanged=True)
        return pb.ActiveState(
            version=active.version,
            hooks=[
                pb.ActiveHook(plugin=n, event=h.event, priority=h.priority, timeout_ms=h.timeout_ms)
                for n, h in active.hooks
            ],
            routes=[
                pb.ActiveRoute(plugin=n, method=r.method, path=r.path, permission=r.permission)
                for n, r in active.routes
            ],
            permissions=sorted({p for m in active.manifests.values() for p in m.permissions}),
        )

    async def RunHook(self, request: pb.RunHookRequest, context: Context) -> pb.RunHookResponse:
        try:
            payload = orjson.loads(request.payload_json)
        except orjson.JSONDecodeError:
            raise InvalidArgument(
                "payload: not JSON", [ErrorDetail("payload", "not JSON")]
            ) from None
        outcome = await self.runtime.run_hook(request.event, payload)
        if outcome.refused is not None:
            r = outcome.refused
            return pb.RunHookResponse(
                refused=pb.HookRefusal(plugin=r.plugin, reason=r.reason, status=r.status),
                skipped=outcome.skipped,
            )
        return pb.RunHookResponse(
            payload_json=orjson.dumps(outcome.payload), skipped=outcome.skipped
        )

    async def HandleRoute(self, request: pb.RouteRequest, context: Context) -> pb.RouteResponse:
        principal = current_principal()
        query: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.query.decode("latin-1"), keep_blank_values=True):
            query.setdefault(name, []).append(value)
        asked = PluginRequest(
            method=request.method,
            path=request.path,
            path_params={},
            query=query,
            headers={h.name.lower(): h.value for h in request.headers},
            body=request.body,
            user_id=principal.user_id,
            role=principal.role,
            permissions=frozenset(principal.permissions),
            client_address=client_address(
                context.invocation_metadata() or (),
                context.peer(),
                getattr(self.runtime.service_settings, "internal_secret", ""),
            ),
            credentials=principal.metadata(),
        )
        answer = await self.runtime.handle_route(
            request.plugin, request.method, request.path, asked
        )
        if answer is None:
            body = orjson.dumps({"error": "Not found"})
            return pb.RouteResponse(status=404, body=body)
        headers = [pb.Header(name="content-type", value=answer.content_type)]
        headers += [pb.Header(name=k, value=v) for k, v in answer.headers.items()]
        return pb.RouteResponse(status=answer.status, headers=headers, body=answer.body)

    async def DeliverEvents(
        self, request: pb.DeliverEventsRequest, context: Context
    ) -> pb.DeliverEventsResponse:
        accepted = await self.inbox.accept(
            request.source,
            [
                Incoming(e.id, e.event, e.subject, e.payload_json, e.occurred_at)
                for e in request.events
            ],
        )
        return pb.DeliverEventsResponse(accepted=accepted)

    async def GetHookStats(self, request: pb.GetHookStatsRequest, context: Context) -> pb.HookStats:
        return pb.HookStats(
            stats=[
                pb.HookStat(plugin=plugin, hook=hook, **counts)
                for (plugin, hook), counts in sorted(self.runtime.all_stats().items())
            ]
        )
