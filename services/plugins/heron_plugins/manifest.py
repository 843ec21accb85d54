"""What a plugin declares about itself: its manifest.

A plugin is a Python package that names itself in the entry point group `heron.plugins`;
the entry point loads its `Manifest`:

```toml
[project.entry-points."heron.plugins"]
my-plugin = "my_plugin:manifest"
```

Everything the service does with a plugin (its dependencies, hooks, routes, settings and
permissions) comes from here, checked when the plugin is found: a manifest that does not hold
is listed with status `error` and the reason, and never stops the service.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jsonschema_rs
from heron_common.plugin_hooks import route_pattern
from heron_common.security.permissions import VALID_PERMISSIONS
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from heron_common.db import Database

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"
PERMISSION_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*$")
MAX_HOOK_TIMEOUT_MS = 5000

EVENTS: tuple[str, ...] = (
    "content:beforeCreate",
    "content:afterCreate",
    "content:beforeUpdate",
    "content:afterUpdate",
    "content:beforeDelete",
    "content:afterDelete",
    "content:afterPublish",
    "content:afterUnpublish",
    "collection:afterChange",
    "media:beforeUpload",
    "media:afterUpload",
    "media:afterDelete",
    "auth:afterLogin",
    "auth:afterRegister",
)


class Reject(Exception):
    """Raised by a before hook: the write is refused, and the client gets `status` (400, or
    409 for a conflict) with the reason, naming the plugin."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status if status in (400, 409) else 400


@dataclass(frozen=True)
class PluginRequest:
    """A request to a plugin's route, as the gateway forwarded it."""

    method: str
    path: str
    path_params: Mapping[str, str]
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    user_id: str
    role: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    client_address: str = ""
    """The client's address, as the gateway vouched for it (for a plugin's own rate limits)."""
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """gRPC metadata carrying the caller's own credentials: a plugin that calls a service with
    it acts as its caller, with the caller's permissions and no more (never log it)."""

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.body) if self.body else None


@dataclass(frozen=True)
class PluginResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PluginContext:
    """What an active plugin's `start` is given: the plugins service's database (where its own
    tables are, created by its migrations), its settings as stored (secrets included) and a
    way to write to its activity log."""

    name: str
    database: Database
    settings: Callable[[], Awaitable[dict[str, Any]]]
    log: Callable[[str, str], Awaitable[None]]
    """(action, detail) → an entry of the plugin's activity log, by `heron`."""
    service_settings: Any = None
    """The plugins service's settings (heron_plugins.settings.PluginsSettings)."""
    content: Any = None
    """A stub of the content service (`cms.content.v1.ContentService`); a call without
    credentials is an anonymous reader's: it sees published items only. A route's handler may
    call it as its caller, with `PluginRequest.credentials` as the metadata."""
    auth: Any = None
    """A stub of the auth service (`cms.auth.v1.AuthService`), on the same terms."""


def plugin_version_table(name: str) -> str:
    """Where a plugin's own migrations record their revision (apart from the service's)."""
    return "alembic_version_plugin_" + name.replace("-", "_")


HookHandler = Callable[[dict[str, Any]], Any]
"""Takes the payload; returns it changed (or None: unchanged), or raises `Reject`. A coroutine
function or a plain one (a plain one runs on a thread, so it cannot hold up the service)."""
RouteHandler = Callable[[PluginRequest], Any]
"""Takes the request; returns a `PluginResponse`, or anything JSON can hold (a 200)."""


class Hook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event: Literal[EVENTS]  # type: ignore[valid-type]
    priority: int = Field(default=100, ge=0, le=10_000, description="Lower runs first.")
    timeout_ms: int = Field(default=500, ge=1, le=MAX_HOOK_TIMEOUT_MS)
    on_error: Literal["fail", "skip"] = "fail"
    handler: HookHandler | None = Field(default=None, exclude=True)


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(pattern=r"^/[A-Za-z0-9_./{}-]*$", max_length=200)
    permission: str = Field(description="What a caller needs; `public` for anyone.")
    handler: RouteHandler | None = Field(default=None, exclude=True)

    def match(self, path: str) -> dict[str, str] | None:
        """The path's parameters if `path` is this route's (`/items/{id}` takes `/items/7`)."""
        found = route_pattern(self.path).match(path)
        return None if found is None else found.groupdict()


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    version: str
    description: str = Field(default="", max_length=500)
    author: str = Field(default="", max_length=200)
    dependencies: dict[str, str] = Field(
        default_factory=dict, description="Other plugins, by name, with a version range."
    )
    hooks: tuple[Hook, ...] = ()
    routes: tuple[Route, ...] = ()
    settings_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the settings; properties with `writeOnly: true` are "
        "secrets (never returned).",
    )
    permissions: tuple[str, ...] = Field(default=(), description="Added to the role catalogue.")
    core: bool = Field(default=False, description="Shipped with Heron and always active.")
    migrations: Path | None = Field(
        default=None,
        exclude=True,
        description="Its own Alembic folder: applied on install, undone on uninstall.",
    )
    start: Callable[[PluginContext], Awaitable[None]] | None = Field(default=None, exclude=True)
    """Called in each plugins service process once the plugin is active there (e.g. to start
    a background loop); `stop` once it no longer is, or the service stops."""
    stop: Callable[[], Awaitable[None]] | None = Field(default=None, exclude=True)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        try:
            Version(value)
        except InvalidVersion:
            raise ValueError(f"{value!r} is not a version (PEP 440)") from None
        return value

    @field_validator("dependencies")
    @classmethod
    def _dependencies(cls, value: dict[str, str]) -> dict[str, str]:
        for name, versions in value.items():
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not a plugin name")
            try:
                SpecifierSet(versions)
            except InvalidSpecifier:
                raise ValueError(f"{name}: {versions!r} is not a version range") from None
        return value

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for permission in value:
            if not PERMISSION_PATTERN.match(permission):
                raise ValueError(f"{permission!r} is not a permission (`area.action`)")
        return value

    @field_validator("settings_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError('the settings schema describes an object ("type": "object")')
        try:
            jsonschema_rs.validator_for(value)
        except Exception as exc:  # the library's own error for a schema that is not one
            raise ValueError(f"not a JSON Schema: {exc}") from None
        return value

    @model_validator(mode="after")
    def _routes_need_known_permissions(self) -> Manifest:
        known = VALID_PERMISSIONS | set(self.permissions) | {"public"}
        for route in self.routes:
            if route.permission not in known:
                raise ValueError(
                    f"route {route.method} {route.path}: {route.permission!r} is neither a "
                    "Heron permission nor one the plugin adds"
                )
        if self.name in self.dependencies:
            raise ValueError("a plugin cannot depend on itself")
        return self

    def secrets(self) -> set[str]:
        """The names of the secret settings (write-only)."""
        properties = self.settings_schema.get("properties", {})
        return {n for n, d in properties.items() if isinstance(d, dict) and d.get("writeOnly")}

    def defaults(self) -> dict[str, Any]:
        """The settings a plugin starts with: each property's `default`."""
        properties = self.settings_schema.get("properties", {})
        return {
            n: d["default"] for n, d in properties.items() if isinstance(d, dict) and "default" in d
        }
