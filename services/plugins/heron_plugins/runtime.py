"""Running active plugins: the state every process polls (which hooks and routes are active),
before hooks on a payload, and requests to plugin routes.

Each handler is bounded by its deadline: a plugin that is slow or raises is reported (counts
per plugin and hook) and, by its manifest's `on_error`, fails the caller's write with an error
that names it or is skipped. A plain (not async) handler runs on a thread, so one that loops
holds a thread, never the service.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from heron_plugins.manifest import (
    Hook,
    Manifest,
    PluginContext,
    PluginRequest,
    PluginResponse,
    Reject,
    Route,
)
from heron_plugins.service import ACTIVE, Plugins

logger = logging.getLogger("heron.plugins")

ROUTE_TIMEOUT_SECONDS = 10.0
ACTIVE_TTL_SECONDS = 0.5


@dataclass(frozen=True)
class Active:
    version: str
    hooks: list[tuple[str, Hook]]
    """(plugin, hook) in the order they run: priority, then plugin name."""
    routes: list[tuple[str, Route]]
    manifests: dict[str, Manifest]


@dataclass(frozen=True)
class Refusal:
    plugin: str
    reason: str
    status: int


@dataclass
class Outcome:
    payload: dict[str, Any] | None = None
    refused: Refusal | None = None
    skipped: list[str] = field(default_factory=list)


class Runtime:
    def __init__(
        self,
        plugins: Plugins,
        service_settings: Any = None,
        content: Any = None,
        auth: Any = None,
    ) -> None:
        self.plugins = plugins
        self.service_settings = service_settings
        self.content = content
        self.auth = auth
        self.started: dict[str, Manifest] = {}
        self._reconciling = asyncio.Lock()
        """The active plugins whose `start` ran in this process."""
        self.calls: Counter[tuple[str, str]] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()
        self.timeouts: Counter[tuple[str, str]] = Counter()
        self._active: tuple[float, int, Active] | None = None

    async def active(self) -> Active:
        """What is active, read from the database at most once per `ACTIVE_TTL_SECONDS` (a
        change made through another replica shows within that; one made here at once)."""
        now = time.monotonic()
        if self._active is not None:
            at, generation, active = self._active
            if now - at < ACTIVE_TTL_SECONDS and generation == self.plugins.generation:
                return active
        generation = self.plugins.generation
        active = await self._read_active()
        self._active = (now, generation, active)
        return active

    async def _read_active(self) -> Active:
        states = await self.plugins.registry()
        manifests = {
            s.name: s.manifest for s in states if s.status == ACTIVE and s.manifest is not None
        }
        hooks = sorted(
            ((name, h) for name, m in manifests.items() for h in m.hooks),
            key=lambda pair: (pair[1].priority, pair[0]),
        )
        routes = [(name, r) for name, m in manifests.items() for r in m.routes]
        shape = [
            [(n, h.event, h.priority) for n, h in hooks],
            [(n, r.method, r.path, r.permission) for n, r in routes],
            sorted({p for m in manifests.values() for p in m.permissions}),
        ]
        version = hashlib.sha256(orjson.dumps(shape)).hexdigest()[:16]
        return Active(version, hooks, routes, manifests)

    async def run(self) -> None:
        """Start the plugins that became active (here or through another replica) and stop
        those that no longer are, until cancelled; then stop them all."""
        try:
            while True:
                try:
                    await self.reconcile()
                except Exception:
                    logger.exception("starting or stopping plugins failed")
                await asyncio.sleep(ACTIVE_TTL_SECONDS)
        finally:
            for name in list(self.started):
                await self._stop(name)

    async def _started(self) -> Active:
        """What is active, each plugin's `start` having run here first (a route or hook of a
        plugin activated a moment ago never finds it unstarted)."""
        active = await self.active()
        if any(n not in self.started and m.start is not None for n, m in active.manifests.items()):
            await self.reconcile()
        return active

    async def reconcile(self) -> None:
        async with self._reconciling:  # one at a time: a plugin starts once
            await self._reconcile()

    async def _reconcile(self) -> None:
        active = await self.active()
        for name, manifest in active.manifests.items():
            if name in self.started or manifest.start is None:
                continue
            self.started[name] = manifest  # once: a failing start is logged, not retried
            try:
                await manifest.start(self.context(name))
                logger.info("plugin started", extra={"plugin": name})
            except Exception as exc:
                self.failures[(name, "start")] += 1
                logger.exception("plugin start failed", extra={"plugin": name, "error": str(exc)})
        for name in [n for n in self.started if n not in active.manifests]:
            await self._stop(name)

    def context(self, name: str) -> PluginContext:
        async def settings() -> dict[str, Any]:
            return await self.plugins.stored_settings(name)

        async def log(action: str, detail: str) -> None:
            await self.plugins.note(name, action, detail)

        return PluginContext(
            name, self.plugins.db, settings, log, self.service_settings, self.content, self.auth
        )

    async def _stop(self, name: str) -> None:
        manifest = self.started.pop(name)
        if manifest.stop is None:
            return
        try:
            await manifest.stop()
            logger.info("plugin stopped", extra={"plugin": name})
        except Exception:
            logger.exception("plugin stop failed", extra={"plugin": name})

    async def run_hook(self, event: str, payload: dict[str, Any]) -> Outcome:
        active = await self._started()
        outcome = Outcome(payload)
        for plugin, hook in active.hooks:
            if hook.event != event or hook.handler is None:
                continue
            key = (plugin, event)
            self.calls[key] += 1
            try:
                async with asyncio.timeout(hook.timeout_ms / 1000):
                    result = await _call(hook.handler, outcome.payload)
            except Reject as refusal:
                return Outcome(refused=Refusal(plugin, refusal.reason, refusal.status))
            except TimeoutError:
                self.timeouts[key] += 1
                logger.warning("hook timed out", extra={"plugin": plugin, "hook": event})
                if hook.on_error == "skip":
                    outcome.skipped.append(plugin)
                    continue
                reason = f"its {event} hook did not answer within {hook.timeout_ms} ms"
                return Outcome(refused=Refusal(plugin, reason, 503))
            except Exception as exc:  # the plugin's own failure: reported, bounded
                self.failures[key] += 1
                logger.warning(
                    "hook failed",
                    extra={"plugin": plugin, "hook": event, "error": type(exc).__name__},
                )
                if hook.on_error == "skip":
                    outcome.skipped.append(plugin)
                    continue
                reason = f"its {event} hook failed ({type(exc).__name__})"
                return Outcome(refused=Refusal(plugin, reason, 500))
            if result is not None:
                if not isinstance(result, dict):
                    self.failures[key] += 1
                    reason = f"its {event} hook returned {type(result).__name__}, not the payload"
                    return Outcome(refused=Refusal(plugin, reason, 500))
                outcome.payload = result
        return outcome

    async def run_after(self, event: str, payload: dict[str, Any]) -> int:
        """Every active handler of the after-event, in priority order, each within its own
        deadline and on its own copy of the payload; how many ran without failing. Nothing a
        handler does reaches the write (it committed) or another handler."""
        active = await self._started()
        body = orjson.dumps(payload)
        succeeded = 0
        for plugin, hook in active.hooks:
            if hook.event != event or hook.handler is None:
                continue
            key = (plugin, event)
            self.calls[key] += 1
            try:
                async with asyncio.timeout(hook.timeout_ms / 1000):
                    await _call(hook.handler, orjson.loads(body))
                succeeded += 1
            except TimeoutError:
                self.timeouts[key] += 1
                logger.warning(
                    "after hook timed out",
                    extra={"plugin": plugin, "hook": event, "event_id": payload.get("id")},
                )
            except Exception as exc:  # the plugin's own failure: reported, bounded
                self.failures[key] += 1
                logger.warning(
                    "after hook failed",
                    extra={
                        "plugin": plugin,
                        "hook": event,
                        "event_id": payload.get("id"),
                        "error": type(exc).__name__,
                    },
                )
        return succeeded

    async def handle_route(
        self, plugin: str, method: str, path: str, request: PluginRequest
    ) -> PluginResponse | None:
        """The plugin route's answer; None when no active route of the plugin matches."""
        active = await self._started()
        for name, route in active.routes:
            if name != plugin or route.method != method or route.handler is None:
                continue
            params = route.match(path)
            if params is None:
                continue
            asked = PluginRequest(**{**request.__dict__, "path_params": params})
            key = (plugin, f"route {method} {route.path}")
            self.calls[key] += 1
            try:
                async with asyncio.timeout(ROUTE_TIMEOUT_SECONDS):
                    result = await _call(route.handler, asked)
            except TimeoutError:
                self.timeouts[key] += 1
                return _error(504, f"the plugin {plugin!r} did not answer in time")
            except Exception as exc:
                self.failures[key] += 1
                logger.warning(
                    "plugin route failed", extra={"plugin": plugin, "error": type(exc).__name__}
                )
                return _error(500, f"the plugin {plugin!r} failed ({type(exc).__name__})")
            if isinstance(result, PluginResponse):
                return result
            return PluginResponse(200, orjson.dumps(result))
        return None

    def all_stats(self) -> dict[tuple[str, str], dict[str, int]]:
        """(plugin, hook or route) → its calls, failures and timeouts."""
        found: dict[tuple[str, str], dict[str, int]] = {}
        for counter, label in (
            (self.calls, "calls"),
            (self.failures, "failures"),
            (self.timeouts, "timeouts"),
        ):
            for key, count in counter.items():
                found.setdefault(key, {"calls": 0, "failures": 0, "timeouts": 0})[label] = count
        return found

    def stats(self, plugin: str) -> dict[str, dict[str, int]]:
        """Calls, failures and timeouts of the plugin's hooks and routes, by hook or route."""
        return {what: counts for (name, what), counts in self.all_stats().items() if name == plugin}


async def _call(handler: Any, argument: Any) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(argument)
    return await asyncio.to_thread(handler, argument)


def _error(status: int, message: str) -> PluginResponse:
    return PluginResponse(status, orjson.dumps({"error": message}))
