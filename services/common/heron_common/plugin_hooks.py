"""What every gateway and service knows of the active plugins: their hooks and routes, fetched
from the plugins service each second (the same way role changes travel), and before hooks
run through it.

With no plugin handling an event, a write pays nothing for it: no call is made. With one, the
write pays one call, which runs every active handler of the event in priority order in the
plugins service, each within its own deadline. A refusal reaches the client naming the plugin
(400 or 409 as the plugin chose; 503 when it timed out, 500 when it failed).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from cms.plugins.v1 import plugins_pb2 as pb
from cms.plugins.v1 import plugins_pb2_grpc

from heron_common.errors import (
    Conflict,
    DeadlineExceeded,
    DomainError,
    ErrorDetail,
    Internal,
    InvalidArgument,
    Unavailable,
)
from heron_common.rpc.client import call
from heron_common.security.authz import INTERNAL_METADATA_KEY

logger = logging.getLogger("heron.plugins")

_MARGIN_SECONDS = 1.0


def route_pattern(template: str) -> re.Pattern[str]:
    """A plugin route's path template as a pattern: `/items/{id}` takes `/items/7`, with the
    parameter `id` as a named group."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


@dataclass(frozen=True)
class ActiveRoute:
    plugin: str
    method: str
    path: str
    permission: str
    pattern: re.Pattern[str] = field(compare=False, repr=False)


class PluginHooks:
    def __init__(
        self,
        stub: plugins_pb2_grpc.PluginsServiceAsyncStub,
        internal_secret: str,
        *,
        poll_seconds: float = 1.0,
        timeout: float = 2.0,
    ) -> None:
        self.stub = stub
        self.metadata = ((INTERNAL_METADATA_KEY, internal_secret),) if internal_secret else ()
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self.version = ""
        self.hooks: dict[str, list[pb.ActiveHook]] = {}
        self.routes: list[ActiveRoute] = []
        self.permissions: frozenset[str] = frozenset()
        """What the active plugins add to the role catalogue."""
        self._failing = False

    def handles(self, event: str) -> bool:
        return event in self.hooks

    async def refresh(self) -> None:
        state: pb.ActiveState = await call(
            self.stub.GetActiveState,
            pb.GetActiveStateRequest(known_version=self.version),
            timeout=self.timeout,
            metadata=self.metadata,
        )
        if state.unchanged:
            return
        hooks: dict[str, list[pb.ActiveHook]] = {}
        for hook in state.hooks:
            hooks.setdefault(hook.event, []).append(hook)
        self.hooks = hooks
        self.routes = [
            ActiveRoute(r.plugin, r.method, r.path, r.permission, route_pattern(r.path))
            for r in state.routes
        ]
        self.permissions = frozenset(state.permissions)
        self.version = state.version
        logger.info(
            "active plugins changed",
            extra={"hooks": sorted(hooks), "routes": len(self.routes)},
        )

    async def run(self) -> None:
        """Refresh every `poll_seconds` for as long as the process runs."""
        while True:
            try:
                await self.refresh()
                if self._failing:
                    logger.info("plugins service reachable again")
                self._failing = False
            except DomainError as exc:
                if not self._failing:  # once per outage: the last state is kept meanwhile
                    logger.warning("cannot refresh active plugins", extra={"error": str(exc)})
                self._failing = True
            await asyncio.sleep(self.poll_seconds)

    async def stats(self) -> list[pb.HookStat]:
        """Calls, failures and timeouts of every plugin's hooks and routes (in the replica of
        the plugins service that answers)."""
        answer: pb.HookStats = await call(
            self.stub.GetHookStats,
            pb.GetHookStatsRequest(),
            timeout=self.timeout,
            metadata=self.metadata,
        )
        return list(answer.stats)

    async def before(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload after every active handler of `event` (unchanged, without a call, when
        there is none); a refusal raised as the error the client gets."""
        handlers = self.hooks.get(event)
        if not handlers:
            return payload
        deadline = sum(h.timeout_ms for h in handlers) / 1000 + _MARGIN_SECONDS
        names = ", ".join(sorted({h.plugin for h in handlers}))
        try:
            answer: pb.RunHookResponse = await call(
                self.stub.RunHook,
                pb.RunHookRequest(event=event, payload_json=orjson.dumps(payload)),
                timeout=deadline,
                metadata=self.metadata,
            )
        except (Unavailable, DeadlineExceeded) as exc:
            raise Unavailable(
                f"The plugins service is unavailable, so the {event} hooks of {names} could "
                "not run; nothing was written. Retry shortly.",
                [ErrorDetail("plugins", str(exc))],
            ) from None
        if answer.WhichOneof("outcome") == "refused":
            raise refusal(event, answer.refused)
        result = orjson.loads(answer.payload_json)
        if not isinstance(result, dict):
            raise Internal(f"The {event} hooks of {names} returned no payload.")
        return result


def refusal(event: str, refused: pb.HookRefusal) -> DomainError:
    message = f"Refused by the plugin {refused.plugin!r}: {refused.reason}"
    details = [ErrorDetail("plugin", refused.plugin), ErrorDetail("hook", event)]
    if refused.status == 409:
        return Conflict(message, details)
    if refused.status == 503:
        return Unavailable(message, details)
    if refused.status == 500:
        return Internal(message, details)
    return InvalidArgument(message, details)
