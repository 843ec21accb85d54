"""Plugin use cases: the registry (what is found, what is installed) and the lifecycle
install → activate ⇄ deactivate → uninstall, with settings checked against each plugin's
schema and every change logged (who, when, what).

A plugin's state is persisted here; its code is whatever the environment holds. A core plugin
is installed and activated at start and stays active.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from heron_common.db import Database
from heron_common.errors import Conflict, ErrorDetail, InvalidArgument, NotFound
from heron_common.ids import now_ms
from heron_common.security.permissions import Principal
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from heron_plugins import repository as repo
from heron_plugins.discovery import Found
from heron_plugins.manifest import Manifest, plugin_version_table
from heron_plugins.repository import Activity, Installed

logger = logging.getLogger("heron.plugins")

ACTIVE, INACTIVE, AVAILABLE, ERROR = "active", "inactive", "available", "error"
MAX_ACTIVITY = 200


@dataclass(frozen=True)
class PluginState:
    """A plugin as the registry shows it."""

    name: str
    status: str
    manifest: Manifest | None = None
    error: str = ""
    installed: Installed | None = None


@dataclass
class Settings:
    values: dict[str, Any]
    secrets_set: list[str] = field(default_factory=list)
    updated_at: int = 0


def _not_found(name: str) -> NotFound:
    return NotFound(f"No plugin {name[:64]!r}.", [ErrorDetail("name", "no such plugin")])


class Plugins:
    def __init__(self, database: Database, found: dict[str, Found]) -> None:
        self.db = database
        self.found = found
        self.generation = 0
        """Counts this process's lifecycle changes (what is active may differ after one)."""

    async def start(self) -> None:
        """Install and activate the core plugins (once; they stay active), and bring every
        installed plugin's own tables to its version's migrations."""
        for name, plugin in self.found.items():
            if plugin.manifest is None or not plugin.manifest.core:
                continue
            async with self.db.transaction() as conn:
                row = await repo.get(conn, name, for_update=True)
                now = now_ms()
                if row is None:
                    await repo.insert(
                        conn,
                        Installed(
                            name,
                            ACTIVE,
                            plugin.manifest.version,
                            plugin.manifest.defaults(),
                            now,
                            now,
                        ),
                    )
                    await repo.log(conn, Activity(name, "activated", "heron", now, "core plugin"))
                elif row.status != ACTIVE or row.version != plugin.manifest.version:
                    await repo.update(
                        conn, name, status=ACTIVE, version=plugin.manifest.version, updated_at=now
                    )
        async with self.db.read() as conn:
            installed = await repo.all_installed(conn)
        for name in installed:
            found = self.found.get(name)
            if found is not None and found.manifest is not None:
                await self._migrate(name, found.manifest)

    # -- reads -------------------------------------------------------------------------------
    async def registry(self) -> list[PluginState]:
        async with self.db.read() as conn:
            installed = await repo.all_installed(conn)
        names = sorted(set(self.found) | set(installed))
        return [self._state(n, installed.get(n)) for n in names]

    async def get(self, name: str) -> PluginState:
        async with self.db.read() as conn:
            row = await repo.get(conn, name)
        if row is None and name not in self.found:
            raise _not_found(name)
        return self._state(name, row)

    def _state(self, name: str, row: Installed | None) -> PluginState:
        plugin = self.found.get(name)
        if plugin is None:
            error = "its package is no longer installed"
            return PluginState(name, ERROR, error=error, installed=row)
        if plugin.manifest is None:
            return PluginState(name, ERROR, error=plugin.error, installed=row)
        status = AVAILABLE if row is None else row.status
        return PluginState(name, status, plugin.manifest, installed=row)

    async def activity(self, name: str, limit: int = 50) -> list[Activity]:
        await self.get(name)
        async with self.db.read() as conn:
            return await repo.activity(conn, name, max(1, min(limit or 50, MAX_ACTIVITY)))

    # -- lifecycle ---------------------------------------------------------------------------
    async def install(self, principal: Principal, name: str) -> PluginState:
        manifest = self._loaded(name)
        async with self.db.transaction() as conn:
            if await repo.get(conn, name, for_update=True) is not None:
                raise Conflict(f"The plugin {name!r} is already installed.")
        await self._migrate(name, manifest)
        async with self.db.transaction() as conn:
            now = now_ms()
            row = Installed(name, INACTIVE, manifest.version, manifest.defaults(), now, now)
            await repo.insert(conn, row)
            await repo.log(
                conn, Activity(name, "installed", _actor(principal), now, manifest.version)
            )
        self.generation += 1
        logger.info("plugin installed", extra={"plugin": name})
        return PluginState(name, INACTIVE, manifest, installed=row)

    async def activate(self, principal: Principal, name: str) -> PluginState:
        manifest = self._loaded(name)
        async with self.db.transaction() as conn:
            row = await self._installed(conn, name)
            if row.status == ACTIVE:
                return PluginState(name, ACTIVE, manifest, installed=row)
            installed = await repo.all_installed(conn)
            problems = []
            for dependency, versions in sorted(manifest.dependencies.items()):
                other = installed.get(dependency)
                found = self.found.get(dependency)
                if (
                    other is None
                    or other.status != ACTIVE
                    or found is None
                    or found.manifest is None
                ):
                    problems.append(
                        ErrorDetail(dependency, f"needs {dependency} {versions}, active")
                    )
                elif Version(found.manifest.version) not in SpecifierSet(versions):
                    problems.append(
                        ErrorDetail(
                            dependency,
                            f"needs {dependency} {versions}; {found.manifest.version} is installed",
                        )
                    )
            if problems:
                raise Conflict(
                    f"The plugin {name!r} needs plugins that are not active in the versions it "
                    "takes: " + "; ".join(p.message for p in problems),
                    problems,
                )
            now = now_ms()
            await repo.update(conn, name, status=ACTIVE, version=manifest.version, updated_at=now)
            await repo.log(conn, Activity(name, "activated", _actor(principal), now, ""))
        self.generation += 1
        logger.info("plugin activated", extra={"plugin": name})
        return PluginState(name, ACTIVE, manifest, installed=_changed(row, ACTIVE, now))

    async def deactivate(self, principal: Principal, name: str) -> PluginState:
        manifest = self._loaded(name)
        if manifest.core:
            raise Conflict(f"The plugin {name!r} is part of Heron: it is always active.")
        async with self.db.transaction() as conn:
            row = await self._installed(conn, name)
            if row.status != ACTIVE:
                return PluginState(name, row.status, manifest, installed=row)
            installed = await repo.all_installed(conn)
            needing = sorted(
                other
                for other, state in installed.items()
                if state.status == ACTIVE
                and (found := self.found.get(other)) is not None
                and found.manifest is not None
                and name in found.manifest.dependencies
            )
            if needing:
                raise Conflict(
                    f"The plugin {name!r} is needed by active plugins: {', '.join(needing)}; "
                    "deactivate them first.",
                    [ErrorDetail(n, f"needs {name}") for n in needing],
                )
            now = now_ms()
            await repo.update(conn, name, status=INACTIVE, updated_at=now)
            await repo.log(conn, Activity(name, "deactivated", _actor(principal), now, ""))
        self.generation += 1
        logger.info("plugin deactivated", extra={"plugin": name})
        return PluginState(name, INACTIVE, manifest, installed=_changed(row, INACTIVE, now))

    async def uninstall(self, principal: Principal, name: str) -> PluginState:
        plugin = self.found.get(name)
        if plugin is not None and plugin.manifest is not None and plugin.manifest.core:
            raise Conflict(f"The plugin {name!r} is part of Heron: it cannot be uninstalled.")
        async with self.db.transaction() as conn:
            row = await self._installed(conn, name)
            if row.status == ACTIVE:
                raise Conflict(f"The plugin {name!r} is active: deactivate it first.")
            if plugin is not None and plugin.manifest is not None:
                # Its own tables go with it (its migrations undone), then its settings.
                await self._migrate(name, plugin.manifest, down=True)
            await repo.delete(conn, name)
            await repo.log(conn, Activity(name, "uninstalled", _actor(principal), now_ms(), ""))
        self.generation += 1
        logger.info("plugin uninstalled", extra={"plugin": name})
        return self._state(name, None)

    # -- settings ----------------------------------------------------------------------------
    async def settings(self, name: str) -> Settings:
        manifest = self._loaded(name)
        async with self.db.read() as conn:
            row = await self._installed(conn, name, for_update=False)
        return _shown(manifest, row.settings, row.updated_at)

    async def update_settings(self, principal: Principal, name: str, values: Any) -> Settings:
        manifest = self._loaded(name)
        if not isinstance(values, dict):
            raise InvalidArgument(
                "settings: expected an object", [ErrorDetail("settings", "expected an object")]
            )
        async with self.db.transaction() as conn:
            row = await self._installed(conn, name)
            secrets = manifest.secrets()
            # A secret left out keeps its value: reads never return it to be sent back.
            merged = {
                **{k: v for k, v in row.settings.items() if k in secrets and k not in values},
                **values,
            }
            _validate(manifest, merged)
            changed = sorted(
                k for k in set(merged) | set(row.settings) if merged.get(k) != row.settings.get(k)
            )
            now = now_ms()
            await repo.update(conn, name, settings=merged, updated_at=now)
            await repo.log(
                conn,
                Activity(name, "settings_changed", _actor(principal), now, ", ".join(changed)),
            )
        logger.info("plugin settings changed", extra={"plugin": name, "settings": changed})
        return _shown(manifest, merged, now)

    async def stored_settings(self, name: str) -> dict[str, Any]:
        """The plugin's settings as stored, secrets included (for the plugin itself only)."""
        async with self.db.read() as conn:
            row = await repo.get(conn, name)
        return {} if row is None else dict(row.settings)

    async def note(self, name: str, action: str, detail: str) -> None:
        """An entry of the plugin's activity log, made by Heron (e.g. an endpoint disabled)."""
        async with self.db.transaction() as conn:
            await repo.log(conn, Activity(name, action, "heron", now_ms(), detail[:1000]))

    # -- helpers -----------------------------------------------------------------------------
    async def _migrate(self, name: str, manifest: Manifest, *, down: bool = False) -> None:
        """Apply (or undo) the plugin's own migrations, when it declares any."""
        if manifest.migrations is None:
            return
        from heron_common.db import migrations
        from heron_common.service import advisory_lock_id

        options: dict[str, Any] = {
            "script_location": manifest.migrations,
            "version_table": plugin_version_table(name),
            "advisory_lock_id": advisory_lock_id(f"plugin:{name}"),
        }
        if down:
            await migrations.downgrade(self.db, **options)
        else:
            await migrations.upgrade(self.db, **options)
        logger.info("plugin migrations applied", extra={"plugin": name, "undone": down})

    def _loaded(self, name: str) -> Manifest:
        plugin = self.found.get(name)
        if plugin is None:
            raise _not_found(name)
        if plugin.manifest is None:
            raise Conflict(
                f"The plugin {name!r} could not be loaded: {plugin.error}",
                [ErrorDetail("name", plugin.error)],
            )
        return plugin.manifest

    async def _installed(self, conn: Any, name: str, *, for_update: bool = True) -> Installed:
        """The installed plugin's row, locked for the transaction of `conn` unless only read."""
        row = await repo.get(conn, name, for_update=for_update)
        if row is None:
            raise Conflict(f"The plugin {name!r} is not installed: install it first.")
        return row


def _actor(principal: Principal) -> str:
    return principal.user_id or "anonymous"


def _changed(row: Installed, status: str, at: int) -> Installed:
    return Installed(row.name, status, row.version, row.settings, row.installed_at, at)


def _shown(manifest: Manifest, values: dict[str, Any], updated_at: int) -> Settings:
    secrets = manifest.secrets()
    return Settings(
        {k: v for k, v in values.items() if k not in secrets},
        sorted(k for k in secrets if values.get(k) not in (None, "")),
        updated_at,
    )


def _validate(manifest: Manifest, values: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(manifest.settings_schema)
    secrets = manifest.secrets()
    problems = []
    for error in validator.iter_errors(values):
        path = [str(p) for p in error.instance_path]
        where = ".".join(["settings", *path])
        # A message quotes the value: never a secret's.
        message = (
            "is not valid (a secret: its value is not shown)"
            if path and path[0] in secrets
            else error.message
        )
        problems.append(ErrorDetail(where, message))
    if problems:
        raise InvalidArgument(
            "the settings do not match the plugin's settings schema", problems[:20]
        )
